"""The workspace seccomp profile: built from data, refusing what it must, with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cleanroom.isolation import seccomp

# The calls issue #20 names (and the measured attack used): each must be refused.
MUST_REFUSE = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "perf_event_open",
    "bpf",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "unshare",
    "setns",
    "mount",
    "open_by_handle_at",
}


def test_every_named_call_is_refused_with_a_reason() -> None:
    profile = seccomp.profile()
    assert set(seccomp.DENIED) >= MUST_REFUSE
    assert not MUST_REFUSE & seccomp.allowed_names(profile)
    assert all(len(reason) > 5 for reason in seccomp.DENIED.values())


def test_allowed_and_denied_never_overlap() -> None:
    assert not set(seccomp.ALLOWED) & set(seccomp.DENIED)
    for names in seccomp.ARCH_ALLOWED.values():
        assert not set(names) & set(seccomp.DENIED)
    assert len(set(seccomp.ALLOWED)) == len(seccomp.ALLOWED)


def test_refuses_by_default_and_check_accepts_it() -> None:
    profile = seccomp.profile()
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert profile["defaultErrnoRet"] == seccomp.EPERM
    seccomp.check(profile)
    # What the engine receives is the same profile.
    assert json.loads(seccomp.profile_json()) == profile


def test_check_refuses_a_profile_that_allows_ptrace() -> None:
    profile = seccomp.profile()
    profile["syscalls"].append({"names": ["ptrace"], "action": "SCMP_ACT_ALLOW"})
    with pytest.raises(seccomp.ProfileError, match="allows ptrace"):
        seccomp.check(profile)
    with pytest.raises(seccomp.ProfileError, match="refuse by default"):
        seccomp.check({**seccomp.profile(), "defaultAction": "SCMP_ACT_ALLOW"})


def test_clone_never_makes_namespaces_and_clone3_falls_back() -> None:
    rules = {tuple(r["names"]): r for r in seccomp.profile()["syscalls"]}
    clone = rules[("clone",)]
    assert clone["args"] == [
        {
            "index": 0,
            "value": seccomp.CLONE_NAMESPACE_FLAGS,
            "valueTwo": 0,
            "op": "SCMP_CMP_MASKED_EQ",
        }
    ]
    assert rules[("clone3",)] == {
        "names": ["clone3"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": seccomp.ENOSYS,
        "comment": seccomp.DENIED["clone3"],
    }


def test_personality_and_socket_are_allowed_only_for_safe_arguments() -> None:
    entries = seccomp.profile()["syscalls"]
    personality = [e["args"][0]["value"] for e in entries if e["names"] == ["personality"]]
    assert sorted(personality) == sorted(seccomp.PERSONALITIES)
    assert 0x0400000 not in personality  # READ_IMPLIES_EXEC
    sockets = [e["args"][0] for e in entries if e["names"] == ["socket"]]
    assert {(a["op"], a["value"]) for a in sockets} == {
        ("SCMP_CMP_LT", 38),
        ("SCMP_CMP_EQ", 39),
        ("SCMP_CMP_GT", 40),
    }


def test_the_command_writes_the_profile_for_kubernetes(tmp_path: Path) -> None:
    target = tmp_path / "cleanroom-workspace.json"
    assert seccomp.main([str(target)]) == 0
    assert json.loads(target.read_text()) == seccomp.profile()
    assert seccomp.main(["a", "b"]) == 2
