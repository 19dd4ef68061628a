"""The hub's log-in form with cleanroom's authenticator: malformed input never gets a
5xx, a good password still logs in afterwards, and the hub's cookies carry SameSite.

A real JupyterHub and proxy run on loopback with the hub process settings the
deployment uses (``configure_hub_process``) and ``CleanroomAuthenticator`` over a
registry in a temporary state folder; nothing else (no spawner, no services) is needed.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
import yaml
from cleanroom import paths
from cleanroom.registry import Registry
from cleanroom.registry.governance import Governance

from tests.airlock.hub import free_port, wait_http
from tests.fuzzing import NASTY_TEXT, SEED, Answer, Client, nasty_query_value, server_errors

ROUNDS = 600
PASSWORD = "correct horse battery"


@dataclass
class LoginHub:
    url: str
    log: Path


@pytest.fixture(scope="module")
def login_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoginHub]:
    root = tmp_path_factory.mktemp("login-hub")
    state = root / "state"
    public = free_port()
    env = {
        **os.environ,
        "CLEANROOM_STATE_DIR": str(state),
        "CLEANROOM_PUBLIC_URL": f"http://127.0.0.1:{public}",
        # The hub API binds every address (workspaces reach it on their gateway).
        "CLEANROOM_HUB_PORT": str(free_port_everywhere()),
        "CLEANROOM_PROXY_API_PORT": str(free_port()),
    }
    env.pop("CLEANROOM_REGISTRY_URL", None)
    state.mkdir()
    # The password form alone, without throttling: this fuzz is about malformed forms
    # never answering 5xx across hundreds of wrong passwords; the second factor, back-off
    # and lock-out have their own tests through a real hub (tests/identity).
    policies = root / "policies"
    shutil.copytree(paths.policies_dir(), policies)
    identity = yaml.safe_load((policies / "identity.yaml").read_text())
    identity["login"].update(backoff_base_seconds=0, max_failures=10**6)
    identity["login"]["address_max_failures"] = 10**6
    (policies / "identity.yaml").write_text(yaml.safe_dump(identity))
    env["CLEANROOM_POLICIES_DIR"] = str(policies)
    governance = Governance(Registry(f"sqlite:///{state / 'registry.sqlite'}"))
    governance.add_user("alice", password=PASSWORD, actor="opal")
    governance.add_user("olga", roles=["officer"], password=PASSWORD, actor="opal")
    config = root / "jupyterhub_config.py"
    config.write_text(
        "from cleanroom.hub.config import configure_hub_process\n"
        "from cleanroom.settings import Settings\n"
        "c = get_config()  # noqa: F821\n"
        "configure_hub_process(c, Settings.from_env())\n"
        "c.JupyterHub.authenticator_class = 'cleanroom.hub.auth.CleanroomAuthenticator'\n"
        "c.CleanroomAuthenticator.require_mfa = False\n"
        # The authenticator's roles carry the airlock's scopes (the airlock itself does
        # not need to run for the log-in form).
        "from cleanroom.airlock.hub_config import CUSTOM_SCOPES\n"
        "c.JupyterHub.custom_scopes = CUSTOM_SCOPES\n"
    )
    log = root / "hub.log"
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "jupyterhub"), "-f", str(config)],
        cwd=root,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    hub = LoginHub(url=f"http://127.0.0.1:{public}", log=log)
    try:
        wait_http(f"{hub.url}/hub/login", timeout=60, proc=proc)
        yield hub
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        print(log.read_text(errors="replace")[-4000:])


def free_port_everywhere() -> int:
    """A port free on every address, not only on loopback."""
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def _form(fields: dict[str, str]) -> bytes:
    return "&".join(
        f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
        for k, v in fields.items()
    ).encode()


def login_round(rng: random.Random, client: Client, xsrf: str) -> Answer:
    kind = rng.randrange(10)
    if kind == 0:
        return client.send("GET", "/hub/login?next=" + nasty_query_value(rng), None, None, "page")
    fields: dict[str, str] = {"_xsrf": xsrf} if rng.random() < 0.9 else {}
    fields["username"] = rng.choice([*NASTY_TEXT, "alice", "Alice ", "olga", "nobody"])
    fields["password"] = rng.choice([*NASTY_TEXT, "wrong password", ""])
    if rng.random() < 0.05:  # now and then the right one, among all the wrong ones
        fields.update(username=rng.choice(["alice", "Alice", " olga "]), password=PASSWORD)
    if rng.random() < 0.1:
        fields.pop(rng.choice(["username", "password"]))
    body = _form(fields)
    content_type = "application/x-www-form-urlencoded"
    if kind == 1:
        body = rng.choice(
            [b"username=%ff%fe&password=x", b"username=%zz", b"\xff\xfe", b"username=a%00b"]
        )
        body += b"&_xsrf=" + xsrf.encode()
    elif kind == 2:
        content_type = rng.choice(["multipart/form-data", "application/json", "text/plain", ""])
    next_url = "" if rng.random() < 0.7 else "?next=" + nasty_query_value(rng)
    return client.send(
        "POST", "/hub/login" + next_url, body, {"Content-Type": content_type}, "login"
    )


def test_the_login_form_never_answers_5xx(login_hub: LoginHub) -> None:
    rng = random.Random(SEED + 3)
    session = requests.Session()
    page = session.get(f"{login_hub.url}/hub/login", timeout=30)
    found = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert found, page.text[:300]
    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    # The hub ties an anonymous XSRF token to the client's address and User-Agent.
    agent = str(session.headers["User-Agent"])
    client = Client(login_hub.url, headers={"Cookie": cookie, "User-Agent": agent})
    answers = [login_round(rng, client, found.group(1)) for _ in range(ROUNDS)]
    client.close()
    failures = server_errors(answers)
    assert not failures, "\n".join(failures[:20])
    # The fuzz reached the authenticator: refused passwords, and a few right ones.
    statuses = {a.status for a in answers}
    assert {200, 302, 403}.issubset(statuses), statuses
    # A registered user with the right password logs in afterwards, and only they do.
    r = session.post(
        f"{login_hub.url}/hub/login",
        data={"username": "alice", "password": PASSWORD, "_xsrf": found.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302, r.text[:300]
    wrong = requests.Session()
    page = wrong.get(f"{login_hub.url}/hub/login", timeout=30)
    token = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert token
    r = wrong.post(
        f"{login_hub.url}/hub/login",
        data={"username": "alice", "password": "not it at all", "_xsrf": token.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 403


def test_every_hub_cookie_is_samesite(login_hub: LoginHub) -> None:
    session = requests.Session()
    page = session.get(f"{login_hub.url}/hub/login", timeout=30)
    token = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert token
    r = session.post(
        f"{login_hub.url}/hub/login",
        data={"username": "olga", "password": PASSWORD, "_xsrf": token.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302
    # The XSRF cookie, the session id and the log-in cookie at least.
    assert len(list(session.cookies)) >= 3, [c.name for c in session.cookies]
    for c in session.cookies:
        assert c.get_nonstandard_attr("SameSite") == "Lax", (c.name, c.__dict__)


@pytest.mark.parametrize("field", ["username", "password"])
def test_a_form_without_a_field_is_a_400_that_says_so(login_hub: LoginHub, field: str) -> None:
    session = requests.Session()
    page = session.get(f"{login_hub.url}/hub/login", timeout=30)
    token = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    assert token
    data = {"username": "alice", "password": PASSWORD, "_xsrf": token.group(1)}
    del data[field]
    r = session.post(f"{login_hub.url}/hub/login", data=data, allow_redirects=False, timeout=30)
    assert r.status_code == 400 and f"Give your {field}" in r.text, r.text[:500]
