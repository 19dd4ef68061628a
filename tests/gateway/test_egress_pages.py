"""The officers' egress pages in the airlock, in Chromium, against the real hub, gateway and
workspace (markers ``docker`` and ``browser``).

An officer signs in with password and code, sees a researcher's usage as the gateway
counts it, grants more in the page, and the grant is the gateway's, journaled as that
officer; spent budgets show as alerts. A researcher may not see the pages, and nobody
grants to themselves or without a reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import chromium
from tests.gateway.helpers import usage, wait_for
from tests.integration.deployment import PROJECT
from tests.integration.harness import Hub

pytestmark = [pytest.mark.docker, pytest.mark.browser]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = chromium(download_dir=tmp_path / "downloads", window=(1400, 1000))
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition(driver)
            if value:
                return value
        except Exception as exc:  # the page is still loading
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out; last error: {last}; page: {driver.page_source[-2000:]}")


def test_an_officer_sees_usage_and_grants_in_the_page(hub: Hub, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    hub.ensure_running("alice", PROJECT)
    assert hub.server_get("alice", PROJECT, "api/status").status_code == 200  # counted
    granted_before = usage(hub, "alice", PROJECT)["granted_today"]

    browser.get(f"{hub.public_url}/hub/login")
    browser.find_element(By.NAME, "username").send_keys("otto")
    browser.find_element(By.NAME, "password").send_keys(hub.env["TEST_PASSWORD"])
    hub.standing("otto")
    browser.find_element(By.NAME, "otp").send_keys(hub.app.code("otto"))
    browser.find_element(By.CSS_SELECTOR, "form").submit()
    _wait(browser, lambda d: "/hub/" in d.current_url and "login" not in d.current_url)

    browser.get(f"{hub.airlock_url}egress")
    row_css = f"#usage-table tr[data-user='alice'][data-project='{PROJECT}']"
    row = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, row_css))[0]
    assert "MiB" in row.text
    assert browser.find_element(By.LINK_TEXT, "Egress")  # in the navigation
    row.find_element(By.NAME, "size").clear()
    row.find_element(By.NAME, "size").send_keys("3MiB")
    row.find_element(By.NAME, "reason").send_keys("figures for the review meeting")
    row.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    notice = _wait(browser, lambda d: d.find_elements(By.ID, "egress-notice"))[0]
    assert "Granted 3.0 MiB to alice" in notice.text and "otto" in notice.text
    assert usage(hub, "alice", PROJECT)["granted_today"] == granted_before + 3 * 2**20

    # The gateway journals it as otto's act (it resolved otto's own hub token).
    def journaled() -> list[dict[str, Any]]:
        done = hub.cli("--json", "journal", "list", "--subject", f"alice/{PROJECT}")
        import json

        return [e for e in json.loads(done.stdout or "[]") if e["action"] == "egress.grant"]

    grants = wait_for(journaled)
    assert grants[-1]["actor"] == "otto" and grants[-1]["detail"]["bytes"] == 3 * 2**20
    browser.get(f"{hub.airlock_url}egress")
    records = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#grant-records .by"))
    assert "otto" in [r.text for r in records]


def test_spent_budgets_show_as_alerts(hub: Hub) -> None:
    """dave's budget (spent by the walls' budget test, or here) is an alert on the page."""
    from tests.integration.harness import python_in

    hub.ensure_running("dave", PROJECT)
    if not usage(hub, "dave", PROJECT)["exhausted"]:
        # Spend it through the gateway, as kernel code would, until an answer is refused.
        code, out = python_in(
            hub.container("dave", PROJECT),
            "open('/home/researcher/work/spend.txt','w').write('s' * (12 * 1024 * 1024))",
        )
        assert code == 0, out
        for _ in range(8):
            if hub.server_get("dave", PROJECT, "api/contents/work/spend.txt").status_code != 200:
                break
    assert usage(hub, "dave", PROJECT)["exhausted"]
    olga = hub.airlock_session("olga")
    page = olga.get(f"{hub.airlock_url}egress", timeout=60)
    assert page.status_code == 200
    assert re.search(rf'class="alert" data-user="dave" data-project="{PROJECT}"', page.text)
    assert "budget spent" in page.text


def test_researchers_see_no_egress_pages_and_refusals_change_nothing(hub: Hub) -> None:
    alice = hub.airlock_session("alice")
    page = alice.get(f"{hub.airlock_url}egress", timeout=60)
    assert page.status_code == 403 and "for disclosure officers and operators" in page.text
    assert "Egress</a>" not in alice.get(f"{hub.airlock_url}requests", timeout=60).text

    olga = hub.airlock_session("olga")
    form = olga.get(f"{hub.airlock_url}egress", timeout=60).text
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form)
    assert xsrf
    before = usage(hub, "alice", PROJECT)["granted_today"]
    for fields, status, message in [
        ({"user": "olga", "size": "1MiB", "reason": "me"}, 403, "to themselves"),
        ({"user": "alice", "size": "lots", "reason": "x"}, 400, "is not a size"),
        ({"user": "alice", "size": "1MiB", "reason": ""}, 400, "say why"),
    ]:
        reply = olga.post(
            f"{hub.airlock_url}egress/grant",
            data={"_xsrf": xsrf.group(1), "project": PROJECT, **fields},
            timeout=60,
            allow_redirects=False,
        )
        assert reply.status_code == status and message in reply.text, reply.text[:500]
    assert usage(hub, "alice", PROJECT)["granted_today"] == before
