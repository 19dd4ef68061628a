"""Protecting the server process from the code its own kernels run.

Kernels run as the same user as the server, and the kernel of a same-user process may
attach to it with ptrace or write its memory through ``/proc/<pid>/mem`` or
``process_vm_writev``, and so switch the extension off from inside. Marking the server
non-dumpable makes the kernel demand ``CAP_SYS_PTRACE`` for all of those, and the
workspace has no capabilities at all. Kernels are unaffected: ``execve`` resets the flag.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def _prctl(option: int, arg: int = 0) -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    result = int(libc.prctl(option, arg, 0, 0, 0))
    if result < 0:
        raise OSError(ctypes.get_errno(), "prctl failed")
    return result


def forbid_tracing() -> bool:
    """Make this process non-dumpable (untraceable by same-user code); False off Linux."""
    if not sys.platform.startswith("linux"):
        return False
    _prctl(PR_SET_DUMPABLE, 0)
    return _prctl(PR_GET_DUMPABLE) == 0
