"""The server process refuses tracing by same-user code; kernels start through the
launcher, with a cleaned environment and a connection file the kernel may read."""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from pathlib import Path

import pytest
from cleanroom_workspace.process import PR_GET_DUMPABLE, _prctl, forbid_tracing


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_forbid_tracing_clears_the_dumpable_flag() -> None:
    assert forbid_tracing() is True
    assert _prctl(PR_GET_DUMPABLE) == 0


def test_child_environment_drops_secrets_and_loader_variables() -> None:
    from cleanroom_workspace.process import child_environment

    env = {
        "PATH": "/usr/bin",
        "HOME": "/home/researcher",
        "CLEANROOM_PROJECT": "p",
        "JUPYTERHUB_API_TOKEN": "t",
        "JUPYTERHUB_COOKIE_SECRET": "c",
        "JPY_API_TOKEN": "t",
        "JPY_SESSION_NAME": "nb.ipynb",
        "CLEANROOM_SERVER_SECRET": "s",
        "JUPYTER_RUNTIME_DIR": "/run/cleanroom/runtime",
        "LD_PRELOAD": "/home/researcher/evil.so",
        "LD_LIBRARY_PATH": "/home/researcher",
        "GCONV_PATH": "/home/researcher",
    }
    assert child_environment(env) == {
        "PATH": "/usr/bin",
        "HOME": "/home/researcher",
        "CLEANROOM_PROJECT": "p",
        "JPY_SESSION_NAME": "nb.ipynb",
    }


# Stands in for the image's as-researcher: records what it was given, then runs it.
RECORDER = """
import json, os, stat, sys
connection = sys.argv[sys.argv.index("-f") + 1]
mode = stat.S_IMODE(os.stat(connection).st_mode)
with open(os.environ["RECORD_TO"], "w") as f:
    json.dump({"argv": sys.argv[1:], "env": sorted(os.environ), "mode": mode}, f)
os.execvp(sys.argv[1], sys.argv[1:])
"""


def test_kernels_start_through_the_launcher_with_a_readable_connection_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cleanroom_workspace.process import ResearcherKernelManager

    recorder = tmp_path / "recorder.py"
    recorder.write_text(RECORDER)
    record = tmp_path / "record.json"
    monkeypatch.setenv("RECORD_TO", str(record))
    monkeypatch.setenv("CLEANROOM_SERVER_SECRET", "secret")
    monkeypatch.setenv("LD_PRELOAD", "")
    manager = ResearcherKernelManager(
        launcher=[sys.executable, str(recorder)],
        connection_folder=str(tmp_path / "kernels"),
        connection_file=str(tmp_path / "runtime" / "kernel-1.json"),
        kernel_name="python3",
    )

    async def start_and_stop() -> None:
        await manager.start_kernel()
        try:
            client = manager.client()
            client.start_channels()
            await client.wait_for_ready(timeout=60)
            client.stop_channels()
        finally:
            await manager.shutdown_kernel(now=True)

    asyncio.run(start_and_stop())
    seen = json.loads(record.read_text())
    assert seen["argv"][1:3] == ["-m", "ipykernel_launcher"]
    assert "CLEANROOM_SERVER_SECRET" not in seen["env"]
    assert "LD_PRELOAD" not in seen["env"]
    assert manager.connection_file == str(tmp_path / "kernels" / "kernel-1.json")
    assert seen["mode"] == 0o640  # the kernel, in the server's group, reads it
    assert stat.S_IMODE((tmp_path / "kernels").stat().st_mode) & 0o777 == 0o750
