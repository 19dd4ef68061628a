"""The seccomp profile of every workspace container: what no process in it may call.

Docker's default profile (moby ``profiles/seccomp/default.json``) is written for a
container that might hold capabilities; it lets processes of one uid trace each other
(``ptrace``, ``process_vm_readv/writev`` from kernel 4.8), and the host has no Yama to
stop them. Measured: kernel code ``PTRACE_SEIZE``d tini (PID 1), killed the Jupyter
server and served ``/data`` on port 8888 itself.

Ours starts from the same list of ordinary syscalls, and decides the rest here, each with
its reason (:data:`DENIED`, data that the tests and the docs read):

- Everything that lets one process reach another's memory, file descriptors or state
  is refused, even between processes of one uid.
- Rules that Docker gates on capabilities (``CAP_SYS_ADMIN``, ``CAP_SYS_PTRACE``, ...)
  are left out: a workspace never holds those capabilities (the spawner drops them), so
  the profile is unconditional and reads the same in every container.
- Everything not named is refused with ``EPERM`` (Docker's default action, too).

The profile is built by :func:`profile` (a dict in the OCI/Docker format) and written
as JSON by :func:`profile_json`; ``python -m cleanroom.isolation.seccomp PATH`` writes it
for a Kubernetes node's ``localhost`` seccomp profiles.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Reasons per refused syscall: the profile allows none of these, on any architecture.
DENIED: dict[str, str] = {
    # -- reaching another process --------------------------------------------------
    "ptrace": "attaches to another process: read/write its memory and registers; kernel "
    "code used it to freeze tini and replace the Jupyter server",
    "process_vm_readv": "reads another process's memory directly",
    "process_vm_writev": "writes another process's memory directly",
    "process_madvise": "acts on another process's memory (reclaim, page-out)",
    "process_mrelease": "reaps the memory of another (dying) process; nothing here needs it",
    "pidfd_getfd": "copies a file descriptor out of another process (its sockets, its files)",
    "kcmp": "compares kernel objects of two processes: a probe of another process's state",
    "perf_event_open": "observes other processes and the CPU (side channels, kernel bugs)",
    "bpf": "loads programs into the kernel",
    "userfaultfd": "stalls the kernel on a page fault at will: the usual helper of kernel "
    "race exploits",
    "modify_ldt": "16-bit segments (Wine, DOSEMU); a history of kernel bugs, unused here",
    # -- the kernel's key store is not namespaced ----------------------------------
    "keyctl": "the kernel keyring is shared by every container of the host",
    "add_key": "the kernel keyring is shared by every container of the host",
    "request_key": "the kernel keyring is shared by every container of the host",
    # -- io_uring performs file and socket operations that seccomp cannot see ------
    "io_uring_setup": "io_uring runs operations past this filter",
    "io_uring_enter": "io_uring runs operations past this filter",
    "io_uring_register": "io_uring runs operations past this filter",
    # -- namespaces and mounts: a new namespace is a new set of rules --------------
    "unshare": "new namespaces (user namespaces give a process capabilities inside them)",
    "setns": "joins other namespaces",
    "clone3": "cannot be filtered on its flags (they sit in memory): ENOSYS, so the C "
    "library falls back to clone, which is filtered",
    "mount": "mounting",
    "umount": "mounting",
    "umount2": "mounting",
    "pivot_root": "mounting",
    "chroot": "changes the root directory",
    "fsopen": "the new mount API",
    "fsconfig": "the new mount API",
    "fsmount": "the new mount API",
    "fspick": "the new mount API",
    "move_mount": "the new mount API",
    "open_tree": "the new mount API",
    "mount_setattr": "the new mount API",
    "open_by_handle_at": "opens files by handle past the mount's path checks (the "
    "'shocker' escape)",
    "name_to_handle_at": "only useful with open_by_handle_at",
    # -- the host itself -------------------------------------------------------------
    "reboot": "the host",
    "kexec_load": "the host",
    "kexec_file_load": "the host",
    "init_module": "kernel modules",
    "finit_module": "kernel modules",
    "delete_module": "kernel modules",
    "swapon": "the host's swap",
    "swapoff": "the host's swap",
    "acct": "process accounting of the host",
    "quotactl": "filesystem quotas",
    "quotactl_fd": "filesystem quotas",
    "lookup_dcookie": "kernel profiling",
    "syslog": "the kernel's log",
    "sethostname": "host name",
    "setdomainname": "host name",
    "settimeofday": "the host's clock",
    "clock_settime": "the host's clock",
    "clock_settime64": "the host's clock",
    "stime": "the host's clock",
    "iopl": "raw I/O ports",
    "ioperm": "raw I/O ports",
    "vhangup": "terminals of others",
    "fanotify_init": "watches the whole filesystem",
    "get_mempolicy": "NUMA policy (needs CAP_SYS_NICE in Docker's profile too)",
    "set_mempolicy": "NUMA policy (needs CAP_SYS_NICE in Docker's profile too)",
    "set_mempolicy_home_node": "NUMA policy (needs CAP_SYS_NICE in Docker's profile too)",
    "mbind": "NUMA policy (needs CAP_SYS_NICE in Docker's profile too)",
    "move_pages": "moves another process's pages",
    "migrate_pages": "moves another process's pages",
    "nfsservctl": "the host's NFS server",
    "lsm_set_self_attr": "security module state",
}

# Docker's default list of ordinary syscalls allowed to every container (moby
# profiles/seccomp/default.json, its first rule), less what DENIED names.
ALLOWED: tuple[str, ...] = (
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat",
    "capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime",
    "clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime",
    "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close",
    "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve",
    "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat",
    "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync",
    "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64",
    "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv", "futex_wake",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32",
    "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32",
    "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
    "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr",
    "getxattrat", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat",
    "listen", "listmount", "listxattr", "listxattrat", "llistxattr", "_llseek",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
    "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore",
    "mkdir", "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
    "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
    "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink",
    "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "nanosleep", "newfstatat", "_newselect", "open", "openat",
    "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64",
    "prctl", "pread64", "preadv", "preadv2", "prlimit64", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead",
    "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "removexattrat",
    "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
    "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
    "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
    "setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
    "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address",
    "setuid", "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget",
    "shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask", "sigreturn",
    "socketcall", "socketpair", "splice", "stat", "stat64", "statfs", "statfs64",
    "statmount", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime",
    "timer_settime64", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
    "timerfd_settime", "timerfd_settime64", "times", "tkill", "truncate", "truncate64",
    "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime",
    "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid",
    "waitpid", "write", "writev",
)  # fmt: skip

# Syscalls allowed only on some architectures (as in Docker's profile).
ARCH_ALLOWED: dict[str, tuple[str, ...]] = {
    "amd64": ("arch_prctl",),
    "x32": ("arch_prctl",),
    "arm": ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
            "cacheflush", "set_tls"),
    "arm64": ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
              "cacheflush", "set_tls"),
}  # fmt: skip

# Architectures the filter covers (a syscall of any other architecture is refused).
ARCH_MAP = (
    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
    {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
)

EPERM = 1
ENOSYS = 38
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
# CLONE_NEWPID | CLONE_NEWNET: clone may make threads and processes, never namespaces.
CLONE_NAMESPACE_FLAGS = 0x7E020000
# personality(2) values the C library and Python use: PER_LINUX, PER_LINUX32,
# UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query). Others (READ_IMPLIES_EXEC,
# ADDR_NO_RANDOMIZE, ...) weaken memory protections.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
# socket(2) families refused, as in Docker's profile: the rules below allow the others.
REFUSED_SOCKET_FAMILIES = {
    38: "AF_ALG: the kernel's crypto API, a long history of kernel bugs",
    40: "AF_VSOCK: talks to the hypervisor, past every network wall",
}


class ProfileError(ValueError):
    """The profile would allow something it must refuse (a bug in this module)."""


@dataclass(frozen=True)
class Rule:
    """One entry of the profile's ``syscalls`` list."""

    names: tuple[str, ...]
    action: str = "SCMP_ACT_ALLOW"
    args: tuple[dict[str, Any], ...] = ()
    arches: tuple[str, ...] = ()
    errno: int | None = None
    comment: str = ""

    def as_json(self) -> dict[str, Any]:
        """The rule as the OCI/Docker profile format writes it."""
        entry: dict[str, Any] = {"names": list(self.names), "action": self.action}
        if self.args:
            entry["args"] = [dict(arg) for arg in self.args]
        if self.arches:
            entry["includes"] = {"arches": list(self.arches)}
        if self.errno is not None:
            entry["errnoRet"] = self.errno
        if self.comment:
            entry["comment"] = self.comment
        return entry


def _arg(index: int, value: int, op: str) -> dict[str, Any]:
    return {"index": index, "value": value, "op": op}


def _masked_zero(index: int, mask: int) -> dict[str, Any]:
    # Docker's format puts the mask in "value" and the expected result in "valueTwo":
    # the rule matches when (arg & mask) == 0.
    return {"index": index, "value": mask, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}


def rules() -> tuple[Rule, ...]:
    """Every rule of the profile, in order."""
    if sorted(REFUSED_SOCKET_FAMILIES) != [38, 40]:
        raise ProfileError("the socket rules below are written for families 38 and 40")
    socket_rules = (
        Rule(("socket",), args=(_arg(0, 38, "SCMP_CMP_LT"),)),
        Rule(("socket",), args=(_arg(0, 39, "SCMP_CMP_EQ"),)),
        Rule(("socket",), args=(_arg(0, 40, "SCMP_CMP_GT"),)),
    )
    return (
        Rule(tuple(sorted(ALLOWED)), comment="Docker's ordinary syscalls, less DENIED"),
        *(
            Rule(names, arches=(arch,))
            for arch, names in sorted(ARCH_ALLOWED.items())
        ),
        *socket_rules,
        *(
            Rule(("personality",), args=(_arg(0, value, "SCMP_CMP_EQ"),))
            for value in PERSONALITIES
        ),
        Rule(
            ("clone",),
            args=(_masked_zero(0, CLONE_NAMESPACE_FLAGS),),
            comment="threads and processes, no namespace flags",
        ),
        Rule(("clone3",), action="SCMP_ACT_ERRNO", errno=ENOSYS, comment=DENIED["clone3"]),
    )  # fmt: skip


def profile() -> dict[str, Any]:
    """The workspace seccomp profile (Docker/OCI JSON format) as a dict."""
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "archMap": [dict(entry) for entry in ARCH_MAP],
        "syscalls": [rule.as_json() for rule in rules()],
    }


def profile_json() -> str:
    """The profile as compact JSON, what ``--security-opt seccomp=`` takes."""
    return json.dumps(profile(), separators=(",", ":"), sort_keys=True)


def check(built: dict[str, Any]) -> None:
    """Raise :class:`ProfileError` unless ``built`` refuses every :data:`DENIED` syscall
    (clone3 only with ENOSYS) and refuses by default."""
    if built.get("defaultAction") != "SCMP_ACT_ERRNO":
        raise ProfileError("the profile must refuse by default (SCMP_ACT_ERRNO)")
    for entry in built.get("syscalls", []):
        if entry.get("action") == "SCMP_ACT_ERRNO":
            continue
        allowed = set(entry.get("names", [])) & set(DENIED)
        if allowed:
            raise ProfileError(f"the profile allows {', '.join(sorted(allowed))}")


def allowed_names(built: dict[str, Any]) -> set[str]:
    """Every syscall some rule of ``built`` allows (on some architecture, for some args)."""
    return {
        name
        for entry in built.get("syscalls", [])
        if entry.get("action") == "SCMP_ACT_ALLOW"
        for name in entry.get("names", [])
    }


def main(argv: list[str] | None = None) -> int:
    """Write the profile to the path given (for Kubernetes nodes), or print it."""
    args = sys.argv[1:] if argv is None else argv
    text = json.dumps(profile(), indent=2, sort_keys=True) + "\n"
    if not args:
        sys.stdout.write(text)
        return 0
    if len(args) != 1:
        print("usage: python -m cleanroom.isolation.seccomp [PATH]", file=sys.stderr)
        return 2
    Path(args[0]).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
