"""The data library's whole path on the real deployment, with a real workspace at the end.

An operator registers a provider's version with its Table Schema (the command line on
the host: the provider's files arrive there); the provider reads its quality report on
the card; a researcher finds it in the catalogue in Chromium, applies from its card with
a colleague and signs; the colleague signs; the provider approves the use; an operator
records the assessment and approves the application; the new project's workspace starts
with the version mounted read-only. (Pages' refusals, and the provider's vote in the
airlock's co-review, are tested on their own hubs: tests/library, tests/airlock.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from cleanroom.registry.governance import Governance

from tests.airlock.test_browser_flow import press
from tests.chromium import chromium
from tests.integration.harness import Hub, run_in

pytestmark = [pytest.mark.docker, pytest.mark.browser]

NAME, VERSION, STUDY = "gauges", "v1", "gauge-drift"
TABLE = "gauge,reading_mm,line\n1,3.20,L2\n2,4.10,L2\n3,2.90,L3\n"
SCHEMA = {
    "fields": [
        {"name": "gauge", "type": "integer", "constraints": {"required": True, "unique": True}},
        {"name": "reading_mm", "type": "number", "constraints": {"minimum": 0}},
        {"name": "line", "type": "string", "constraints": {"enum": ["L1", "L2", "L3"]}},
    ],
    "primaryKey": ["gauge"],
}


def _library(hub: Hub) -> str:
    return f"{hub.public_url}/services/library/"


def _session(hub: Hub, user: str) -> requests.Session:
    """``user`` signed in to the hub and, through its OAuth, to the library."""
    s = hub.login(user)
    assert s.get(_library(hub), timeout=60).status_code == 200
    return s


def _post(hub: Hub, s: requests.Session, path: str, **form: str) -> requests.Response:
    page = s.get(_library(hub) + "applications", timeout=60)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text)
    # Pages without a form still set the library's cookie (the hub's own is under /hub/).
    ours = [c.value for c in s.cookies if c.name == "_xsrf" and not c.path.startswith("/hub")]
    token = xsrf.group(1) if xsrf else ours[0]
    r = s.post(_library(hub) + path, data={**form, "_xsrf": token}, timeout=60)
    assert r.status_code == 200, (path, r.status_code, r.text[:600])
    return r


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = chromium(download_dir=tmp_path)
    yield driver
    driver.quit()


def _apply_in_chromium(hub: Hub, driver: Any) -> int:
    """alice signs in through the hub's form, finds the version, applies and signs."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{hub.public_url}/hub/login")
    driver.find_element(By.NAME, "username").send_keys("alice")
    driver.find_element(By.NAME, "password").send_keys(hub.env["TEST_PASSWORD"])
    hub.standing("alice")
    driver.find_element(By.NAME, "otp").send_keys(hub.app.code("alice") + Keys.ENTER)
    WebDriverWait(driver, 30).until(lambda d: "/hub/login" not in d.current_url)
    driver.get(_library(hub))
    WebDriverWait(driver, 30).until(lambda d: "Catalogue" in d.title)
    search = driver.find_element(By.NAME, "q")
    search.send_keys("gauge readings")
    press(driver, search, Keys.ENTER)
    press(driver, driver.find_element(By.LINK_TEXT, NAME), Keys.ENTER)
    assert driver.find_element(By.ID, "quality-status").text.lower() == "verified"
    press(driver, driver.find_element(By.PARTIAL_LINK_TEXT, "Apply for a project"), Keys.ENTER)
    box = driver.find_element(By.CSS_SELECTOR, f"input[type=checkbox][value='{NAME}@{VERSION}']")
    assert box.is_selected()  # chosen from the card
    driver.find_element(By.NAME, "title").send_keys("Gauge drift")
    driver.find_element(By.NAME, "purpose").send_keys("Whether gauges drift between lines")
    driver.find_element(By.NAME, "members").send_keys("alice, bob")
    ends = (date.today() + timedelta(days=120)).isoformat()
    driver.find_element(By.NAME, "ends_on").send_keys(ends)
    driver.find_element(By.NAME, "assessment_reference").send_keys("DPIA-2026-077")
    submit = driver.find_element(By.XPATH, "//button[normalize-space()='Submit']")
    press(driver, submit, Keys.ENTER)
    assert "submitted" in driver.find_element(By.CLASS_NAME, "notice").text
    number = int(driver.current_url.split("/applications/")[1].split("?")[0])
    sign = driver.find_element(By.XPATH, "//button[normalize-space()='Sign the pledge']")
    press(driver, sign, Keys.ENTER)
    assert driver.find_element(By.ID, "stage").text.lower() == "waiting for signatures"
    return number


def test_a_registered_version_reaches_a_running_workspace_through_the_browser(
    hub: Hub, browser: Any, tmp_path: Path
) -> None:
    data = tmp_path / "gauges"
    data.mkdir()
    (data / "gauges.csv").write_text(TABLE)
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    done = hub.cli(
        "datasets", "register", str(data), "--name", NAME, "--version", VERSION,
        "--provider", "Acme", "--schema", str(schema), "--description", "Gauge readings, lines 2-3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    pat = _session(hub, "pat")
    card = pat.get(f"{_library(hub)}datasets/{NAME}/{VERSION}", timeout=60)
    assert card.status_code == 200 and "verified" in card.text and "3 rows" in card.text
    assert "L2,4.10" not in card.text  # the card, never the data

    number = _apply_in_chromium(hub, browser)
    bob = _session(hub, "bob")
    _post(hub, bob, f"applications/{number}/sign")
    r = _post(hub, pat, "provider/applications/approve", application=str(number), dataset=NAME)
    assert f"application {number} may use {NAME}" in r.text
    opal = _session(hub, "opal")
    _post(hub, opal, f"applications/{number}/assess", reference="DPIA-2026-077",
          outcome="approved")  # fmt: skip
    r = _post(hub, opal, f"applications/{number}/approve", project=STUDY, tier="standard")
    assert f"project {STUDY} exists" in r.text

    project = hub.registry.get_project(STUDY)
    assert project.members == ("alice", "bob")
    reply, seconds = hub.spawn("alice", STUDY)
    assert reply.status_code in (201, 202), reply.text
    print(f"spawn alice/{STUDY}: {seconds:.1f} s")
    try:
        container = hub.container("alice", STUDY)
        code, out = run_in(container, "cat", f"/data/{NAME}/gauges.csv")
        assert code == 0 and out == TABLE
        code, _ = run_in(container, "sh", "-c", f"echo x > /data/{NAME}/more.csv")
        assert code != 0  # read-only
    finally:
        hub.stop_server("alice", STUDY)
    journal = Governance(hub.registry).journal_entries(f"application:{number}")
    actions = [e.action for e in journal if e.subject == f"application:{number}"]
    assert actions == [
        "application.submit",
        "application.sign",
        "application.sign",
        "application.approve_use",
        "application.assessment",
        "application.approve",
    ]


@pytest.mark.parametrize(
    ("user", "shown", "hidden"),
    [
        ("pat", ["provider-pages", "library/provider"], ["Your projects", "operator-pages"]),
        ("opal", ["operator-pages", "library/operator"], ["Your projects", "provider-pages"]),
        ("olga", ["officer-pages", "airlock/queue"], ["Your projects", "operator-pages"]),
        ("alice", ["Your projects", "library/applications"], ["provider-pages", "officer-pages"]),
    ],
)
def test_the_home_page_leads_each_person_to_their_own_pages(
    hub: Hub, user: str, shown: list[str], hidden: list[str]
) -> None:
    home = hub.login(user).get(f"{hub.public_url}/hub/home", timeout=60)
    assert home.status_code == 200
    for text in shown:
        assert text in home.text, (user, text)
    for text in hidden:
        assert text not in home.text, (user, text)
