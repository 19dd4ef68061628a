"""The gateway's walls against a real workspace, through the real proxy and gateway.

Kernel code (here: commands run in the container as the researcher) tries to move data
out along each route class; the tests prove what arrives is bounded, on the record and
explained. Budget tests use dave (a member of the alpha project nobody else's tests use),
so spending his budget leaves the others' tests alone.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests

from tests.gateway.helpers import api, execute, metric, start_kernel, usage, wait_for
from tests.integration.deployment import PROJECT
from tests.integration.harness import Hub, python_in

pytestmark = pytest.mark.docker


def _ip(hub: Hub, user: str) -> str:
    container = hub.container(user, PROJECT)
    container.reload()
    return str(next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"])


@pytest.fixture(scope="module")
def alice(hub: Hub) -> Iterator[Hub]:
    hub.ensure_running("alice", PROJECT)
    yield hub


@pytest.fixture(scope="module")
def dave(hub: Hub) -> Iterator[Hub]:
    hub.ensure_running("dave", PROJECT)
    yield hub
    # dave's workspace is this module's own: later modules start him from nothing.
    hub.stop_server("dave", PROJECT)


# -- who gets in -------------------------------------------------------------------
def test_other_users_are_refused_before_the_container(alice: Hub) -> None:
    reply = requests.get(
        f"{alice.public_url}/user/alice/{PROJECT}/api/contents/work",
        headers={"Authorization": f"token {alice.token('bob')}"},
        timeout=30,
    )
    assert reply.status_code == 403
    assert "belongs to alice" in reply.json()["message"]
    assert (
        metric(
            alice,
            "cleanroom_gateway_refusals_total",
            user="alice",
            project=PROJECT,
            reason="not_owner",
        )
        >= 1
    )


def test_browser_without_login_is_sent_to_the_hub(alice: Hub) -> None:
    reply = requests.get(
        f"{alice.public_url}/user/alice/{PROJECT}/lab",
        headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"},
        allow_redirects=False,
        timeout=30,
    )
    assert reply.status_code == 302
    assert "/hub/api/oauth2/authorize" in reply.headers["Location"]
    assert "client_id=service-cleanroom-gateway" in reply.headers["Location"]


def test_routes_off_the_allowlist_are_refused(alice: Hub) -> None:
    for path in ("api/spec.yaml", "lab/api/build", "files/work/x.txt", "nbconvert/html/a.ipynb"):
        reply = alice.server_get("alice", PROJECT, path)
        assert reply.status_code == 403, path
        assert reply.json()["reason"] == "Blocked by the clean room"


def test_pages_carry_a_content_security_policy(alice: Hub) -> None:
    reply = alice.server_get("alice", PROJECT, "lab")
    assert reply.status_code == 200
    csp = reply.headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )


# -- the firewall and the proof ---------------------------------------------------------
def test_host_cannot_reach_a_workspace_server_directly(alice: Hub) -> None:
    address = _ip(alice, "alice")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((address, 8888), timeout=10).close()
    # ... while through the gateway it answers.
    assert alice.server_get("alice", PROJECT, "api/status").status_code == 200


def test_a_replaced_server_serves_nothing(alice: Hub) -> None:
    """What answers at the server's address without the per-start secret gets nothing
    through, even with a forged proof header and the right status."""
    container = alice.container("alice", PROJECT)
    fake = (
        "import http.server\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = b'STOLEN-DATA' * 100\n"
        "        self.send_response(200)\n"
        "        self.send_header('X-Cleanroom-Proof', '0' * 64)\n"
        "        self.send_header('Content-Length', str(len(body)))\n"
        "        self.end_headers(); self.wfile.write(body)\n"
        "http.server.HTTPServer(('0.0.0.0', 8899), H).serve_forever()\n"
    )
    container.exec_run(["python3", "-c", fake], user="1000", detach=True)
    routes = json.loads((alice.state / "gateway" / "routes.json").read_text())
    mine = next(r for r in routes if r["owner"] == "alice" and r["server"] == PROJECT)
    fake_route = {**mine, "target": f"http://{_ip(alice, 'alice')}:8899"}
    assert api(alice, "PUT", f"/api/routes/alice/{PROJECT}", json=fake_route).ok
    try:
        seen: list[str] = []

        def answered() -> tuple[requests.Response] | None:
            # Until the fake server listens, the gateway says the server did not answer.
            r = alice.server_get("alice", PROJECT, "api/status")
            seen.append(f"{r.status_code} {r.text[:300]}")
            # (A tuple: a Response is falsy when its status is an error.)
            return (r,) if r.status_code != 502 or "prove" in r.text else None

        try:
            (reply,) = wait_for(answered)
        except AssertionError as exc:
            raise AssertionError(seen[-3:]) from exc
        assert reply.status_code == 502
        assert "STOLEN" not in reply.text
        assert "prove" in reply.json()["message"]
    finally:
        assert api(alice, "PUT", f"/api/routes/alice/{PROJECT}", json=mine).ok
    assert alice.server_get("alice", PROJECT, "api/status").status_code == 200


# -- kernel outputs ---------------------------------------------------------------------
def test_script_outputs_are_stripped_with_a_notice(alice: Hub) -> None:
    kernel = start_kernel(alice, "alice", PROJECT)
    code = (
        "from IPython.display import display, Javascript, HTML, SVG\n"
        "display(Javascript('window.leak = 1'))\n"
        'display(HTML(\'<b>ok</b><img src=x onerror="window.leak=2">'
        "<script>window.leak=3</script>'))\n"
        "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"><script>window.leak=4</script></svg>'))\n"
        "print('done')\n"
    )
    messages = execute(alice, "alice", PROJECT, kernel, code)
    outputs = [
        m["content"]["data"]
        for m in messages
        if m["header"]["msg_type"] in ("display_data", "execute_result")
    ]
    assert len(outputs) == 3
    raw = json.dumps(outputs)
    assert not any("javascript" in mime for bundle in outputs for mime in bundle)
    assert "window.leak" not in raw
    assert "onerror" not in raw
    assert not any("image/svg+xml" in bundle for bundle in outputs)
    texts = [m["content"].get("text", "") for m in messages if m["header"]["msg_type"] == "stream"]
    assert any("withheld" in t for t in texts), texts
    assert any("done" in t for t in texts)
    html = [
        m["content"]["data"]["text/html"]
        for m in messages
        if m["header"]["msg_type"] == "display_data" and "text/html" in m["content"]["data"]
    ]
    assert html and "<b>ok</b>" in html[0]


def test_binary_frames_meet_the_same_rules(alice: Hub) -> None:
    """Messages with buffers travel as binary frames: the gateway reads them, strips
    code-running outputs, caps and counts the whole frame, buffers included."""
    kernel = start_kernel(alice, "alice", PROJECT)
    before = usage(alice, "alice", PROJECT)["by_kind"].get("kernel", 0)
    code = (
        "k = get_ipython().kernel\n"
        "def send(data, buffers):\n"
        "    k.session.send(k.iopub_socket, 'display_data', {'data': data, 'metadata': {}},\n"
        "                   parent=k.get_parent(), buffers=buffers)\n"
        "send({'application/javascript': 'window.leak = 5', 'text/plain': 'binary one',\n"
        "      'text/html': '<b>b</b><script>window.leak = 6</script>'}, [b'B' * 5000])\n"
        "send({'text/plain': 'too big'}, [b'C' * (3 * 1024 * 1024)])\n"
    )
    messages = execute(alice, "alice", PROJECT, kernel, code)
    binary = [m for m in messages if "binary_frame_bytes" in m]
    assert len(binary) == 1, [m["header"]["msg_type"] for m in messages]
    data = binary[0]["content"]["data"]
    assert data["text/plain"] == "binary one" and "application/javascript" not in data
    assert "window.leak" not in json.dumps(data)
    assert [bytes(b) for b in binary[0]["buffers"]] == [b"B" * 5000]
    assert not any(b"C" * 1000 in bytes(b) for m in messages for b in m.get("buffers", []))
    texts = [m["content"].get("text", "") for m in messages if m["header"]["msg_type"] == "stream"]
    assert any("runs code in the browser" in t for t in texts), texts
    assert any("was withheld" in t and "display_data" in t for t in texts), texts

    def counted() -> bool:
        now = usage(alice, "alice", PROJECT)["by_kind"].get("kernel", 0)
        return bool(now - before >= binary[0]["binary_frame_bytes"] > 5000)

    wait_for(counted)


def test_a_fake_png_output_is_withheld(alice: Hub) -> None:
    kernel = start_kernel(alice, "alice", PROJECT)
    code = (
        "import base64\n"
        "from IPython.display import display\n"
        "payload = base64.b64encode(b'\\x89PNG\\r\\n\\x1a\\n' + b'CSV,DATA\\n' * 1000).decode()\n"
        "display({'image/png': payload}, raw=True)\n"
    )
    messages = execute(alice, "alice", PROJECT, kernel, code)
    outputs = [m for m in messages if m["header"]["msg_type"] == "display_data"]
    assert outputs and "CSV" not in json.dumps(outputs)
    assert "image/png" not in outputs[0]["content"]["data"]
    assert any("not a well-formed PNG" in json.dumps(m) for m in messages)


def test_a_message_over_the_cap_is_withheld_on_the_shell_channel(alice: Hub) -> None:
    """user_expressions in execute_reply, which no workspace cap looks at."""
    kernel = start_kernel(alice, "alice", PROJECT)
    code = (
        "get_ipython().user_ns['big'] = 'x' * (3 * 1024 * 1024)\n"
        "get_ipython().payload_manager.write_payload({'source': 'page', 'data': "
        "{'text/plain': big}, 'start': 0})\n"
    )
    messages = execute(alice, "alice", PROJECT, kernel, code)
    assert "x" * 10000 not in json.dumps(messages)
    reply = next(m for m in messages if m["header"]["msg_type"] == "execute_reply")
    assert reply["content"]["payload"] == []
    assert any(
        "withheld" in m["content"].get("text", "")
        for m in messages
        if m["header"]["msg_type"] == "stream"
    )


# -- the budget ---------------------------------------------------------------------------
def test_contents_reads_stop_at_the_budget_and_are_on_the_record(dave: Hub) -> None:
    container = dave.container("dave", PROJECT)
    code, out = python_in(
        container,
        "open('/home/researcher/work/dump.txt','w').write(('0123456789abcdef' * 65536) * 3)",
    )
    assert code == 0, out
    before = usage(dave, "dave", PROJECT)
    limit = before["hour_limit"]
    received = 0
    refused = None
    for _ in range(40):
        reply = dave.server_get("dave", PROJECT, "api/contents/work/dump.txt?content=1")
        if reply.status_code != 200:
            refused = reply
            break
        received += len(reply.content)
    assert refused is not None, "the budget never ran out"
    assert refused.status_code == 429
    message = refused.json()["message"]
    assert "egress budget" in message and "refills at" in message and "officer" in message
    # At most the budget arrived, and the gateway counted every byte that did.
    after = usage(dave, "dave", PROJECT)
    assert received <= limit
    assert after["hour_bytes"] - before["hour_bytes"] >= received
    assert after["by_kind"].get("contents", 0) >= received
    assert (
        metric(dave, "cleanroom_gateway_bytes_total", user="dave", project=PROJECT, kind="contents")
        >= received
    )
    # Kernel output is bounded by the same budget, with a notice in the cell.
    left = usage(dave, "dave", PROJECT)["remaining"]
    kernel = start_kernel(dave, "dave", PROJECT)
    arrived = 0
    for _ in range(8):
        # display_data: Jupyter's own rate limit counts only stream output.
        messages = execute(
            dave,
            "dave",
            PROJECT,
            kernel,
            "display({'text/plain': 'y' * 1000000}, raw=True)",
        )
        texts = [
            m["content"].get("text", "") for m in messages if m["header"]["msg_type"] == "stream"
        ]
        arrived += json.dumps(messages).count("y" * 1000) * 1000
        if any("egress budget" in t for t in texts):
            break
    else:
        raise AssertionError("kernel output never met the budget")
    assert arrived <= left

    # The refusal is in the journal.
    def journaled() -> bool:
        done = dave.cli("--json", "journal", "list", "--subject", f"dave/{PROJECT}")
        return done.returncode == 0 and "egress.refused" in done.stdout and "budget" in done.stdout

    wait_for(journaled)
    # An officer's grant, signed in, opens it again, on the record as that officer; the
    # researcher's own credential grants nothing.
    done = dave.cli_as("dave", "egress", "grant", "dave", PROJECT, "1MiB", "--reason", "more")
    assert done.returncode == 2 and "holds none of the roles officer or operator" in done.stderr
    done = dave.cli_as(
        "olga", "egress", "grant", "dave", PROJECT, "1MiB", "--reason", "review of figures"
    )
    assert done.returncode == 0, done.stderr
    assert usage(dave, "dave", PROJECT)["granted_today"] == 1048576
    assert dave.server_get("dave", PROJECT, "api/status").status_code == 200


def test_terminals_work_and_count(alice: Hub) -> None:
    import asyncio

    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    reply = requests.post(
        f"{alice.public_url}/user/alice/{PROJECT}/api/terminals",
        headers={"Authorization": f"token {alice.token('alice')}"},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    name = reply.json()["name"]
    before = usage(alice, "alice", PROJECT)["by_kind"].get("terminal", 0)

    async def run() -> str:
        url = alice.public_url.replace("http", "ws", 1)
        ws = await websocket_connect(
            HTTPRequest(
                f"{url}/user/alice/{PROJECT}/terminals/websocket/{name}",
                headers={"Authorization": f"token {alice.token('alice')}"},
            )
        )
        ws.write_message(json.dumps(["stdin", "echo gw-$((6*7))\r"]))
        seen = ""
        while "gw-42" not in seen:
            raw = await asyncio.wait_for(ws.read_message(), 30)
            assert raw is not None
            seen += str(raw)
        ws.close()
        return seen

    assert "gw-42" in asyncio.run(run())
    assert usage(alice, "alice", PROJECT)["by_kind"].get("terminal", 0) > before
