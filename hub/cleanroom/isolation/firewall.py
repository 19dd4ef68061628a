"""Host firewall rules that close Docker's gateway gap.

A container on an ``--internal`` network has no route out, but it still reaches every
host service listening on 0.0.0.0 through its bridge's gateway address. These rules,
installed at hub start and removed at ``make down``, make the host refuse everything
that arrives from a project bridge of this deployment except new connections to the allowed
ports (the hub API and the airlock's submission listener) and replies to connections
the host opened (the proxy talking to a workspace). DNS to the gateway is refused too,
so the engine's embedded resolver has nowhere to forward names.

With ``guard_server_port`` set (the deployment does), a second chain in ``OUTPUT``
guards the other direction: new connections from this host to a workspace's server
port on the deployment's bridges are rejected unless the socket belongs to the egress
gateway's system group, so the hub, the proxy and any other process of the host can
reach a workspace only through the gateway.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from cleanroom.errors import CleanroomError
from cleanroom.isolation.networks import bridge_prefix


@dataclass(frozen=True)
class _Family:
    tool: str
    reject_other: str


_FAMILIES = (
    _Family("iptables", "icmp-port-unreachable"),
    _Family("ip6tables", "icmp6-port-unreachable"),
)


GATEWAY_GROUP = "cleanroom-gateway"


def gateway_gid(name: str = GATEWAY_GROUP) -> int:
    """The gateway's system group id (created by :func:`ensure_gateway_group`)."""
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError as exc:
        raise FirewallError(
            f"system group {name!r} is missing; `cleanroom firewall install` creates it"
        ) from exc


def ensure_gateway_group(name: str = GATEWAY_GROUP) -> int:
    """Create the gateway's system group unless it exists; its gid."""
    import grp

    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        pass
    done = subprocess.run(
        ["groupadd", "--system", name], capture_output=True, text=True, check=False
    )
    if done.returncode not in (0, 9):  # 9: it exists (created meanwhile)
        raise FirewallError(f"groupadd --system {name} failed: {done.stderr.strip()}")
    return grp.getgrnam(name).gr_gid


class FirewallError(CleanroomError):
    """The rules could not be read or written (not root, no iptables)."""

    status = 503


class HostFirewall:
    """Installs, checks and removes the rules guarding the host from project bridges."""

    def __init__(
        self,
        allowed_ports: Sequence[int],
        instance: str = "main",
        *,
        guard_server_port: int | None = None,
        gateway_group: str = GATEWAY_GROUP,
    ):
        if not allowed_ports:
            raise FirewallError("the firewall needs at least the hub API port to allow")
        self.allowed_ports = sorted(set(int(p) for p in allowed_ports))
        self.interface = bridge_prefix(instance) + "+"
        self.chain = f"CLEANROOM-{instance.upper()}"
        self.out_chain = f"{self.chain}-OUT"
        self.guard_server_port = guard_server_port
        self.gateway_group = gateway_group

    def out_rules(self) -> list[list[str]]:
        """The OUTPUT chain's rules: only the gateway's group opens server connections."""
        if self.guard_server_port is None:
            return []
        return [
            [
                "-p",
                "tcp",
                "--dport",
                str(self.guard_server_port),
                "-m",
                "conntrack",
                "--ctstate",
                "NEW",
                "-m",
                "owner",
                "!",
                "--gid-owner",
                str(gateway_gid(self.gateway_group)),
                "-j",
                "REJECT",
                "--reject-with",
                "tcp-reset",
            ]
        ]

    def rules(self, family: _Family) -> list[list[str]]:
        """The chain's rules, in order, as argument lists for ``-A``."""
        rules = [["-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"]]
        for port in self.allowed_ports:
            rules.append(
                [
                    "-p",
                    "tcp",
                    "--dport",
                    str(port),
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "NEW",
                    "-j",
                    "ACCEPT",
                ]
            )
        rules.append(["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"])
        rules.append(["-j", "REJECT", "--reject-with", family.reject_other])
        return rules

    def install(self) -> None:
        """Create (or refresh) the chain and jump to it first thing in INPUT."""
        for family in self._families():
            if self._run(family, "-n", "-L", self.chain, check=False).returncode != 0:
                self._run(family, "-N", self.chain)
            self._run(family, "-F", self.chain)
            for rule in self.rules(family):
                self._run(family, "-A", self.chain, *rule)
            jump = ["INPUT", "-i", self.interface, "-j", self.chain]
            if self._run(family, "-C", *jump, check=False).returncode != 0:
                self._run(family, "-I", jump[0], "1", *jump[1:])
            if self.guard_server_port is not None:
                self._install_out(family)

    def _install_out(self, family: _Family) -> None:
        ensure_gateway_group(self.gateway_group)
        if self._run(family, "-n", "-L", self.out_chain, check=False).returncode != 0:
            self._run(family, "-N", self.out_chain)
        self._run(family, "-F", self.out_chain)
        for rule in self.out_rules():
            self._run(family, "-A", self.out_chain, *rule)
        jump = ["OUTPUT", "-o", self.interface, "-j", self.out_chain]
        if self._run(family, "-C", *jump, check=False).returncode != 0:
            self._run(family, "-I", jump[0], "1", *jump[1:])

    def remove(self) -> None:
        """Delete the jump and the chain; a no-op when they are not there."""
        for family in self._families():
            jump = ["INPUT", "-i", self.interface, "-j", self.chain]
            while self._run(family, "-C", *jump, check=False).returncode == 0:
                self._run(family, "-D", *jump)
            if self._run(family, "-n", "-L", self.chain, check=False).returncode == 0:
                self._run(family, "-F", self.chain)
                self._run(family, "-X", self.chain)
            out = ["OUTPUT", "-o", self.interface, "-j", self.out_chain]
            while self._run(family, "-C", *out, check=False).returncode == 0:
                self._run(family, "-D", *out)
            if self._run(family, "-n", "-L", self.out_chain, check=False).returncode == 0:
                self._run(family, "-F", self.out_chain)
                self._run(family, "-X", self.out_chain)

    def is_installed(self) -> bool:
        """True when IPv4 jumps to a chain holding exactly our rules."""
        family = _FAMILIES[0]
        jump = ["INPUT", "-i", self.interface, "-j", self.chain]
        if shutil.which(family.tool) is None:
            return False
        if self._run(family, "-C", *jump, check=False).returncode != 0:
            return False
        listed = self._run(family, "-S", self.chain, check=False)
        if listed.returncode != 0:
            return False
        ports = {int(p) for p in re.findall(r"--dport (\d+)", listed.stdout)}
        count = listed.stdout.count(f"-A {self.chain} ")
        if ports != set(self.allowed_ports) or count != len(self.rules(family)):
            return False
        if self.guard_server_port is None:
            return True
        out = ["OUTPUT", "-o", self.interface, "-j", self.out_chain]
        if self._run(family, "-C", *out, check=False).returncode != 0:
            return False
        listed = self._run(family, "-S", self.out_chain, check=False)
        return listed.returncode == 0 and listed.stdout.count(f"-A {self.out_chain} ") == len(
            self.out_rules()
        )

    def _families(self) -> list[_Family]:
        present = [f for f in _FAMILIES if shutil.which(f.tool)]
        if not present or present[0].tool != "iptables":
            raise FirewallError(
                "iptables is not installed; install it (apt-get install iptables) "
                "so that workspaces cannot reach host services"
            )
        return present

    @staticmethod
    def _run(family: _Family, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [family.tool, "-w", "10", *args], capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            detail = done.stderr.strip() or done.stdout.strip()
            raise FirewallError(
                f"{family.tool} {' '.join(args)} failed: {detail} (the firewall needs root)"
            )
        return done
