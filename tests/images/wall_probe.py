"""Run inside a workspace container (as the researcher): start a real kernel and a real
terminal through the server, run the attacks in the kernel, print the results as JSON.

Arguments: the server's token (test-only; a real workspace uses the hub's OAuth).
"""

import json
import os
import sys
import time
import urllib.request
from pathlib import Path

from jupyter_client import BlockingKernelClient

TOKEN = sys.argv[1]
BASE = "http://127.0.0.1:8888"

# What the kernel does: every attack of the issue, and what it can see of itself.
ATTACKS = r"""
import ctypes, errno, json, os, signal, socket
libc = ctypes.CDLL(None, use_errno=True)
out = {}

def status(pid):
    fields = {}
    for line in open(f"/proc/{pid}/status"):
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields

def error_of(call):
    try:
        call()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "ok"

def ptrace(request, pid):
    if libc.ptrace(request, pid, 0, 0) == 0:
        return "ok"
    return errno.errorcode[ctypes.get_errno()]

me = status("self")
out["uids"] = me["Uid"].split()
out["groups"] = me["Groups"].split()
out["caps"] = {k: me[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
out["seccomp"] = me["Seccomp"]
out["no_new_privs"] = me["NoNewPrivs"]
out["secret_names"] = sorted(
    n for n in os.environ
    if n.startswith("JUPYTERHUB_") or n in ("JPY_API_TOKEN", "CLEANROOM_SERVER_SECRET")
)
server = None
for pid in os.listdir("/proc"):
    if pid.isdigit() and int(pid) != 1:
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(
            (b"jupyter-server", b"jupyterhub-singleuser", b"cleanroom-workspace-server")
        ) for part in cmd[:2]):
            server = int(pid)
out["server_uid"] = status(server)["Uid"].split()[0] if server else None
out["pid1_uid"] = status(1)["Uid"].split()[0]
out["ptrace_seize_pid1"] = ptrace(0x4206, 1)
out["ptrace_attach_server"] = ptrace(16, server)
out["kill_stop_server"] = error_of(lambda: os.kill(server, signal.SIGSTOP))
out["kill_term_server"] = error_of(lambda: os.kill(server, signal.SIGTERM))
out["kill_pid1"] = error_of(lambda: os.kill(1, signal.SIGKILL))
out["server_environ"] = error_of(lambda: open(f"/proc/{server}/environ").read())
out["pid1_environ"] = error_of(lambda: open("/proc/1/environ").read())
out["server_mem"] = error_of(lambda: open(f"/proc/{server}/mem", "rb").read(1))
out["server_runtime"] = error_of(lambda: os.listdir("/run/cleanroom/runtime"))

class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(8)
local = iovec(ctypes.cast(buf, ctypes.c_void_p), 8)
remote = iovec(0x400000, 8)
libc.process_vm_readv.restype = ctypes.c_ssize_t
result = libc.process_vm_readv(server, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
out["process_vm_readv"] = "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]

# A child of one's own (same uid, which the kernel's own rules allow to trace): only
# the seccomp profile refuses this.
child = os.fork()
if child == 0:
    import time
    time.sleep(30)
    os._exit(0)
out["ptrace_own_child"] = ptrace(16, child)
result = libc.process_vm_readv(child, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
out["process_vm_readv_own_child"] = "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)

def bind(reuse_port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind(("0.0.0.0", 8888))
        s.listen()
    finally:
        s.close()
out["bind_8888"] = error_of(lambda: bind(False))
out["bind_8888_reuseport"] = error_of(lambda: bind(True))
out["unshare_user"] = "ok" if libc.unshare(0x10000000) == 0 else errno.errorcode[ctypes.get_errno()]
out["write_root"] = error_of(lambda: open("/opt/cleanroom/evil", "w"))
out["write_etc"] = error_of(lambda: open("/etc/evil", "w"))
out["connection_dir"] = sorted(os.listdir("/run/cleanroom/kernels"))

def fill(folder):
    chunk = b"x" * (1024 * 1024)
    written = 0
    path = os.path.join(folder, "fill.bin")
    try:
        with open(path, "wb") as f:
            while written < 4 * 1024**3:
                f.write(chunk)
                f.flush()
                written += len(chunk)
        return {"error": "none", "mib": written // 2**20}
    except OSError as exc:
        return {"error": errno.errorcode.get(exc.errno, str(exc.errno)), "mib": written // 2**20}
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
out["fill"] = {p: fill(p) for p in ("/tmp", "/var/tmp", os.path.expanduser("~"), "/dev/shm")}
print("RESULT" + json.dumps(out))
"""


def api(method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{BASE}{path}",
        method=method,
        data=json.dumps(body or {}).encode() if method == "POST" else None,
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read() or b"{}")


def wait_for_server() -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            api("GET", "/api/status")
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_in_kernel(code: str) -> dict:
    kernel = api("POST", "/api/kernels", {"name": "python3"})
    client = BlockingKernelClient()
    client.load_connection_file(f"/run/cleanroom/kernels/kernel-{kernel['id']}.json")
    client.start_channels()
    client.wait_for_ready(timeout=60)
    text = []

    def collect(message: dict) -> None:
        if message["msg_type"] == "stream":
            text.append(message["content"]["text"])
        if message["msg_type"] == "error":
            text.append("\n".join(message["content"]["traceback"]))

    client.execute_interactive(code, timeout=240, output_hook=collect)
    client.stop_channels()
    output = "".join(text)
    marker = output.rfind("RESULT")
    if marker < 0:
        raise SystemExit(f"the kernel printed no result:\n{output}")
    return json.loads(output[marker + len("RESULT") :].splitlines()[0])


def terminal_process() -> dict:
    """Start a terminal through the server, and describe its shell (same uid as us)."""
    before = set(_shells())
    api("POST", "/api/terminals")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = set(_shells()) - before
        if new:
            pid = new.pop()
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
            fields = dict(line.split(":", 1) for line in status if ":" in line)
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            names = sorted(e.split(b"=", 1)[0].decode() for e in environ if b"=" in e)
            return {
                "uid": fields["Uid"].split()[0],
                "caps": fields["CapEff"].strip() + fields["CapBnd"].strip(),
                "secret_names": [
                    n
                    for n in names
                    if n.startswith("JUPYTERHUB_")
                    or n in ("JPY_API_TOKEN", "CLEANROOM_SERVER_SECRET")
                ],
            }
        time.sleep(0.1)
    raise SystemExit("no terminal shell appeared")


def _shells() -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmd.startswith(b"/bin/bash\0-l"):
            found.append(int(pid))
    return found


if __name__ == "__main__":
    wait_for_server()
    result = run_in_kernel(ATTACKS)
    result["terminal"] = terminal_process()
    print(json.dumps(result))
