"""A project's NetworkPolicies, from the pure functions the Kubernetes spawner applies."""

from __future__ import annotations

import pytest
from cleanroom.errors import InvalidInput
from cleanroom.kubernetes import policies
from cleanroom.kubernetes.pods import selector_labels

HUB = policies.Peer(cidr="10.77.0.1/32")
GATEWAY = policies.Peer(pod_labels={"app.kubernetes.io/component": "proxy"})


def plan(airlock: bool = True) -> policies.PolicyPlan:
    return policies.PolicyPlan(
        project="p-alpha",
        instance="test",
        namespace="cleanroom-test",
        hub=HUB,
        hub_port=8081,
        gateway=GATEWAY,
        airlock=HUB if airlock else None,
        airlock_port=8082 if airlock else 0,
    )


def test_three_policies_select_exactly_the_projects_workspaces() -> None:
    made = policies.network_policies(plan())
    assert [p["metadata"]["name"] for p in made] == policies.policy_names("test", "p-alpha")
    for policy in made:
        assert policy["metadata"]["namespace"] == "cleanroom-test"
        assert policy["spec"]["podSelector"] == {"matchLabels": selector_labels("test", "p-alpha")}
    other = policies.network_policies(
        policies.PolicyPlan("p-beta", "test", "cleanroom-test", HUB, 8081, GATEWAY)
    )
    assert other[0]["spec"]["podSelector"] != made[0]["spec"]["podSelector"]
    assert {p["metadata"]["name"] for p in other}.isdisjoint(p["metadata"]["name"] for p in made)


def test_default_deny_in_both_directions() -> None:
    deny = policies.network_policies(plan())[0]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny and "egress" not in deny


def test_egress_only_to_the_hub_api_and_the_airlock_submission_port() -> None:
    egress = policies.network_policies(plan())[1]["spec"]
    assert egress["policyTypes"] == ["Egress"]
    assert egress["egress"] == [
        {
            "to": [{"ipBlock": {"cidr": "10.77.0.1/32"}}],
            "ports": [{"protocol": "TCP", "port": 8081}],
        },
        {
            "to": [{"ipBlock": {"cidr": "10.77.0.1/32"}}],
            "ports": [{"protocol": "TCP", "port": 8082}],
        },
    ]
    # No airlock: the hub API alone (no DNS, nothing else).
    assert len(policies.network_policies(plan(airlock=False))[1]["spec"]["egress"]) == 1


def test_ingress_only_from_the_gateway_to_the_server_port() -> None:
    ingress = policies.network_policies(plan())[2]["spec"]
    assert ingress["policyTypes"] == ["Ingress"]
    assert ingress["ingress"] == [
        {
            "from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "proxy"}}}],
            "ports": [{"protocol": "TCP", "port": 8888}],
        }
    ]


def test_a_peer_is_an_address_block_or_pods_and_ports_are_checked() -> None:
    with pytest.raises(InvalidInput):
        policies.Peer()
    with pytest.raises(InvalidInput):
        policies.Peer(cidr="10.0.0.1/32", pod_labels={"a": "b"})
    scoped = policies.Peer(pod_labels={"app": "hub"}, namespace_labels={"name": "cr"})
    assert scoped.manifest()["namespaceSelector"] == {"matchLabels": {"name": "cr"}}
    with pytest.raises(InvalidInput):
        policies.network_policies(policies.PolicyPlan("p", "test", "ns", HUB, 0, GATEWAY))
