"""Protecting the server process from the code its own kernels run.

In the notebook image the server runs as uid 1001 (``jupyter``) and every kernel and
terminal as the researcher (uid 1000), started through the image's launcher
(:class:`ResearcherKernelManager`, the image's ``terminado_settings``), so kernel code
cannot signal, trace or read the server; the container's seccomp profile refuses
ptrace and ``process_vm_*`` to everyone as well.

Where the server still shares its uid with kernels (development, other images), a
same-user kernel may attach to it with ptrace or write its memory through
``/proc/<pid>/mem``: marking the server non-dumpable makes the kernel demand
``CAP_SYS_PTRACE`` for those (kernels are unaffected: ``execve`` resets the flag).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping
from typing import Any

from jupyter_server.services.kernels.kernelmanager import ServerKernelManager
from traitlets import List, Unicode

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


# The C library ignores these for a setuid program (glibc's "unsecure" variables): each
# makes a dynamically linked program load or read files its caller names. The launcher
# starts with the server's uid and capabilities, so the kernel's environment (which a
# kernel spec may set) must not carry them to it.
UNSAFE_ENVIRONMENT = frozenset(
    {
        "GCONV_PATH",
        "GETCONF_DIR",
        "GLIBC_TUNABLES",
        "HOSTALIASES",
        "LOCALDOMAIN",
        "LOCPATH",
        "MALLOC_TRACE",
        "NIS_PATH",
        "NLSPATH",
        "RESOLV_HOST_CONF",
        "RES_OPTIONS",
        "TMPDIR",
        "TZDIR",
    }
)
# Never handed to a kernel or terminal: the server's hub token, the per-start proof of
# the real server (see the hub's gateway) and the server's own places.
SECRET_ENVIRONMENT = frozenset(
    {"JPY_API_TOKEN", "CLEANROOM_SERVER_SECRET", "JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR"}
)


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without what must not reach a process started as the researcher.

    Drops the server's secrets (every ``JUPYTERHUB_*`` variable, ``JPY_API_TOKEN``,
    ``CLEANROOM_SERVER_SECRET``) and every variable that changes what a dynamically
    linked program loads (``LD_*`` and :data:`UNSAFE_ENVIRONMENT`). The launcher strips
    the secrets again itself; this copy keeps them out of its own environment too.
    """
    return {
        name: value
        for name, value in env.items()
        if not name.startswith(("JUPYTERHUB_", "LD_"))
        and name not in SECRET_ENVIRONMENT
        and name not in UNSAFE_ENVIRONMENT
    }


class ResearcherKernelManager(ServerKernelManager):
    """Kernels start through the launcher: as the researcher, with no capabilities.

    The Jupyter server runs as its own uid (``jupyter``, 1001) so that code in a kernel
    (uid 1000) can neither signal, trace nor read it. Every kernel command, whatever
    kernel spec it came from, is prefixed with :attr:`launcher`, and its environment is
    cleaned (:func:`child_environment`). Connection files go to a folder the
    researcher's group may read (the kernel reads its own), not the server's runtime
    folder.
    """

    launcher = List(
        Unicode(),
        help="""Command that runs its arguments as the researcher (the image's
        ``/opt/cleanroom/bin/as-researcher``). Empty: kernels start as the server's user
        (development only; the notebook image sets it).""",
    ).tag(config=True)

    connection_folder = Unicode(
        "",
        help="""Folder of the kernels' connection files when :attr:`launcher` is set
        (the server's runtime folder is private to it). The image sets
        ``/run/cleanroom/kernels``. Empty: next to the server's runtime files.""",
    ).tag(config=True)

    def write_connection_file(self, **kwargs: Any) -> None:
        """Write the connection file, readable by the researcher's group (the kernel)."""
        if self.launcher and self.connection_folder and not self._connection_file_written:
            # The server passes a path in its runtime folder; the kernel could not read it.
            try:
                os.makedirs(self.connection_folder, mode=0o750, exist_ok=True)
            except OSError as exc:
                # Not the image's two-uid layout (no /run/cleanroom tmpfs, e.g. a plain
                # `docker run --user 1000`): kernels then share the server's uid and read
                # its runtime folder. In the two-uid layout they could not, and fail.
                self.log.warning("cleanroom: kernel connection files stay put: %s", exc)
            else:
                name = os.path.basename(self.connection_file)
                self.connection_file = os.path.join(self.connection_folder, name)
        super().write_connection_file(**kwargs)
        if self.launcher and os.path.exists(self.connection_file):
            os.chmod(self.connection_file, 0o640)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        if self.launcher:
            kernel_cmd = [*self.launcher, *kernel_cmd]
            kw["env"] = child_environment(kw.get("env") or os.environ)
        await super()._async_launch_kernel(kernel_cmd, **kw)

    _launch_kernel = _async_launch_kernel  # type: ignore[assignment]
