"""The network wall of a project on Kubernetes, as NetworkPolicy objects (pure functions).

Per project, three policies select the project's workspace pods (by the labels of
:func:`cleanroom.kubernetes.pods.selector_labels`):

- ``…-deny``: default deny, ingress and egress (a pod selected by no allowing rule
  reaches nothing and is reached by nothing: not the internet, not cluster DNS, not the
  cluster API, not another project's pods, not its own project's other pods);
- ``…-egress``: egress only to the hub API and the airlock's submission endpoint, each
  on its one TCP port;
- ``…-ingress``: ingress only from the gateway (the proxy in front of workspaces) to the
  server port: the egress gateway's direction reversed.

Policies only *describe* the wall: enforcement needs a policy-enforcing CNI (Calico or
Cilium; docs/kubernetes.md says which was assumed). The one-node test cluster's ``bridge``
CNI enforces none, so no test claims isolation from these objects; tests read them back
from the cluster and compare them with these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cleanroom.errors import InvalidInput
from cleanroom.kubernetes.pods import (
    LABEL_COMPONENT,
    SERVER_PORT,
    dns_name,
    label_value,
    selector_labels,
)
from cleanroom.workspace.labels import LABEL_INSTANCE, LABEL_PROJECT


@dataclass(frozen=True)
class Peer:
    """Who is allowed: an address block (a hub on a node or outside the cluster), or pods
    with ``pod_labels`` (a hub in the cluster), optionally in namespaces with
    ``namespace_labels`` (default: the workspaces' own namespace)."""

    cidr: str | None = None
    pod_labels: Mapping[str, str] = field(default_factory=dict)
    namespace_labels: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if bool(self.cidr) == bool(self.pod_labels):
            raise InvalidInput("a policy peer is either an address block or pod labels")

    def manifest(self) -> dict[str, Any]:
        """The peer as a NetworkPolicy ``to``/``from`` entry."""
        if self.cidr:
            return {"ipBlock": {"cidr": self.cidr}}
        peer: dict[str, Any] = {"podSelector": {"matchLabels": dict(self.pod_labels)}}
        if self.namespace_labels is not None:
            peer["namespaceSelector"] = {"matchLabels": dict(self.namespace_labels)}
        return peer


@dataclass(frozen=True)
class PolicyPlan:
    """What a project's policies are decided from."""

    project: str
    instance: str
    namespace: str
    hub: Peer
    hub_port: int
    gateway: Peer
    airlock: Peer | None = None
    airlock_port: int = 0
    server_port: int = SERVER_PORT


def policy_names(instance: str, project: str) -> list[str]:
    """The names of ``project``'s three policies (deny, egress, ingress)."""
    return [dns_name("cr", instance, project, part) for part in ("deny", "egress", "ingress")]


def _tcp(port: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port}]


def network_policies(plan: PolicyPlan) -> list[dict[str, Any]]:
    """The project's NetworkPolicy manifests, in the order of :func:`policy_names`."""
    for name, port in (("hub", plan.hub_port), ("server", plan.server_port)):
        if not 0 < port < 65536:
            raise InvalidInput(f"the {name} port {port!r} is not a TCP port")
    selector = {"matchLabels": selector_labels(plan.instance, plan.project)}
    labels = {
        LABEL_INSTANCE: label_value(plan.instance),
        LABEL_PROJECT: label_value(plan.project),
        LABEL_COMPONENT: "network-policy",
    }
    deny_name, egress_name, ingress_name = policy_names(plan.instance, plan.project)

    def policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": plan.namespace, "labels": dict(labels)},
            "spec": {"podSelector": selector, **spec},
        }

    egress = [{"to": [plan.hub.manifest()], "ports": _tcp(plan.hub_port)}]
    if plan.airlock is not None and plan.airlock_port:
        egress.append({"to": [plan.airlock.manifest()], "ports": _tcp(plan.airlock_port)})
    return [
        policy(deny_name, {"policyTypes": ["Ingress", "Egress"]}),
        policy(egress_name, {"policyTypes": ["Egress"], "egress": egress}),
        policy(
            ingress_name,
            {
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [plan.gateway.manifest()], "ports": _tcp(plan.server_port)}],
            },
        ),
    ]
