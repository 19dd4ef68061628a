"""The firewall and network naming rules, without touching the host."""

from __future__ import annotations

import ipaddress

import pytest
from cleanroom.isolation.firewall import _FAMILIES, FirewallError, HostFirewall
from cleanroom.isolation.networks import ProjectNetworks, bridge_name, bridge_prefix


def test_bridge_names_fit_linux_and_separate_deployments() -> None:
    name = bridge_name("main", "a-very-long-project-name-that-goes-on")
    assert len(name) == 15
    assert name.startswith(bridge_prefix("main"))
    assert bridge_prefix("main") != bridge_prefix("test")
    assert bridge_name("main", "p1") != bridge_name("main", "p2")


def test_rules_allow_only_listed_ports_then_reject_everything() -> None:
    fw = HostFirewall([8081, 8082, 8081], instance="main")
    rules = fw.rules(_FAMILIES[0])
    assert rules[0][-1] == "ACCEPT" and "ESTABLISHED,RELATED" in rules[0]
    accepted = [r[r.index("--dport") + 1] for r in rules if "--dport" in r]
    assert accepted == ["8081", "8082"]
    assert rules[-2][-3:] == ["REJECT", "--reject-with", "tcp-reset"]
    assert rules[-1] == ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"]
    assert fw.interface == bridge_prefix("main") + "+"


def test_firewall_needs_a_port() -> None:
    with pytest.raises(FirewallError):
        HostFirewall([])


def test_default_pool_holds_at_least_250_projects() -> None:
    # No engine needed: capacity is arithmetic on the pool.
    networks = ProjectNetworks.__new__(ProjectNetworks)
    networks.pool = ipaddress.ip_network("10.213.0.0/16")
    networks.prefix = 24
    assert networks.capacity() >= 250
