"""In Chromium: JupyterLab loads with the extension, the file browser offers no download
and offers "Request release…", which reaches the (fake) airlock and shows in the panel.

A real ``jupyter lab`` from the host venv runs on a loopback port with the extension's
config files and built front end laid out as the wheel installs them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.chromium import chromium

from .conftest import HUB_TOKEN, PROJECT, USER

pytestmark = pytest.mark.browser

REPO = Path(__file__).parents[2]
EXTENSIONS = REPO / "extensions"
LABEXTENSION = EXTENSIONS / "cleanroom_workspace" / "labextension"
TOKEN = "browser-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _built_front_end(tmp: Path) -> Path:
    """The built labextension (built now with build-wheel.sh if it is missing or stale)."""
    subprocess.run(
        [str(EXTENSIONS / "build-wheel.sh"), str(tmp / "wheel")],
        check=True,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        timeout=600,
    )
    assert (LABEXTENSION / "package.json").exists()
    return LABEXTENSION


@pytest.fixture
def lab(tmp_path: Path, airlock: Any) -> Iterator[str]:
    """A running JupyterLab with the extension; yields its base URL."""
    labext = _built_front_end(tmp_path)
    # What the wheel installs into the environment's prefix, laid out under tmp/prefix.
    prefix = tmp_path / "prefix"
    server_d = prefix / "etc" / "jupyter" / "jupyter_server_config.d"
    page_d = prefix / "etc" / "jupyter" / "labconfig" / "page_config.d"
    server_d.mkdir(parents=True)
    page_d.mkdir(parents=True)
    shutil.copy(EXTENSIONS / "jupyter-config" / "server" / "cleanroom_workspace.json", server_d)
    shutil.copy(EXTENSIONS / "jupyter-config" / "labconfig" / "cleanroom_workspace.json", page_d)
    labextensions = prefix / "share" / "jupyter" / "labextensions"
    labextensions.mkdir(parents=True)
    (labextensions / "cleanroom-workspace").symlink_to(labext)
    # The workspace's home folder.
    home = tmp_path / "home"
    root = home
    (root / "work").mkdir(parents=True)
    (tmp_path / "project").mkdir()
    (tmp_path / "data" / "press").mkdir(parents=True)
    (root / "project").symlink_to(tmp_path / "project")
    (root / "data").symlink_to(tmp_path / "data")
    (root / "work" / "table.csv").write_text("group,mean\na,12.8\n")
    (tmp_path / "data" / "press" / "cycles.csv").write_text("cycle,force\n1,12.5\n")
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_DATA_DIR": str(tmp_path / "user-data"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "JUPYTER_CONFIG_PATH": str(prefix / "etc" / "jupyter"),
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        "JUPYTER_PREFER_ENV_PATH": "1",
        "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
        "CLEANROOM_PROJECT": PROJECT,
        "CLEANROOM_USER": USER,
        "CLEANROOM_AIRLOCK_URL": airlock.url,
        "JUPYTERHUB_API_TOKEN": HUB_TOKEN,
    }
    log = open(tmp_path / "lab.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "jupyter-lab"),
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        env=env,
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "jupyter lab did not start:\n" + (tmp_path / "lab.log").read_text()
                    ) from None
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium driven by Debian's chromedriver; nothing is downloaded."""
    driver = chromium(
        profile_dir=tmp_path / "chromium-profile", window=(1400, 900), page_load_timeout=60
    )
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: Any, condition: Any, timeout: float = 60) -> Any:
    """Until ``condition`` holds. JupyterLab re-renders lists (the file browser) while a
    condition reads them; an element gone stale means "not yet", so try again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        driver, timeout, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition)


def _visible_menu_labels(driver: Any) -> list[str]:
    from selenium.webdriver.common.by import By

    labels = driver.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-itemLabel")
    return [label.text for label in labels if label.is_displayed()]


def _open_file_context_menu(driver: Any, name: str) -> list[str]:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    def right_clicked(d: Any) -> bool:
        # Found, selected and right-clicked in one try: a re-render in between makes the
        # element stale, and _wait tries again.
        item = next(
            (
                e
                for e in d.find_elements(By.CSS_SELECTOR, ".jp-DirListing-item")
                if e.get_attribute("title") and name in e.text
            ),
            None,
        )
        if item is None:
            return False
        item.click()
        ActionChains(d).context_click(item).perform()
        return True

    _wait(driver, right_clicked)
    return list(_wait(driver, lambda d: _visible_menu_labels(d) or None, timeout=20))


def test_file_browser_offers_release_not_download(lab: str, browser: Any, airlock: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{lab}/lab/tree/work?token={TOKEN}")
    labels = _open_file_context_menu(browser, "table.csv")
    assert "Request release…" in labels, labels
    for hidden in (
        "Download",
        "Copy Download Link",
        "Open in New Browser Tab",
        "Copy Shareable Link",
    ):
        assert hidden not in labels, labels
    assert not [label for label in labels if "Download" in label], labels

    # Request the release through the dialog.
    item = next(
        e
        for e in browser.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-item")
        if e.text.strip() == "Request release…"
    )
    item.click()
    justification = _wait(
        browser, lambda d: d.find_element(By.CSS_SELECTOR, ".cr-ReleaseForm-justification")
    )
    justification.send_keys("Aggregate table for the paper.")
    browser.find_element(By.CSS_SELECTOR, ".cr-ReleaseForm-description").send_keys("Means")
    submit = next(
        b
        for b in browser.find_elements(By.CSS_SELECTOR, ".jp-Dialog-button")
        if "Submit request" in b.text
    )
    submit.click()

    # The request reached the airlock with the file's bytes, and the panel lists it.
    _wait(browser, lambda d: airlock.received or None, timeout=30)
    (received,) = airlock.received
    assert received["metadata"]["files"][0]["path"] == "work/table.csv"
    assert received["files"]["file0"].body == b"group,mean\na,12.8\n"
    state = _wait(
        browser,
        lambda d: next(
            (e for e in d.find_elements(By.CSS_SELECTOR, ".cr-Request-state") if e.text),
            None,
        ),
    )
    assert state.text.lower() == "submitted"


def test_file_menu_has_no_download_or_export(lab: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{lab}/lab/tree/work?token={TOKEN}")
    file_menu = _wait(
        browser,
        lambda d: next(
            (
                e
                for e in d.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel")
                if e.text == "File"
            ),
            None,
        ),
    )
    file_menu.click()
    labels = _wait(browser, lambda d: _visible_menu_labels(d) or None, timeout=20)
    assert "Download" not in labels, labels
    assert not [label for label in labels if label.startswith("Save and Export")], labels


def test_direct_download_url_is_refused_in_the_browser(lab: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{lab}/files/work/table.csv?token={TOKEN}")
    body = browser.find_element(By.TAG_NAME, "body").text
    assert "blocked by the clean room" in body
    assert "Request release" in body
    assert "12.8" not in body


def test_panel_lists_requests_with_officer_comments(lab: str, browser: Any, airlock: Any) -> None:
    from selenium.webdriver.common.by import By

    airlock.requests.append(
        {
            "id": "r-1",
            "project": PROJECT,
            "state": "returned",
            "created": "2026-11-20T09:00:00Z",
            "updated": "2026-11-21T10:00:00Z",
            "justification": "Figure 3 of the paper.",
            "files": [{"path": "work/fig3.png", "sha256": "0" * 64, "size": 10}],
            "comments": [
                {
                    "author": "officer-olga",
                    "text": "Cells under 10 <b>must</b> be suppressed.",
                    "time": "2026-11-21T10:00:00Z",
                    "file": "work/fig3.png",
                }
            ],
        }
    )
    browser.get(f"{lab}/lab/tree/work?token={TOKEN}")
    tab = _wait(
        browser,
        lambda d: next(
            iter(
                d.find_elements(
                    By.CSS_SELECTOR, '.jp-SideBar [data-id="cleanroom-release-requests"]'
                )
            ),
            None,
        ),
    )
    tab.click()
    comment = _wait(
        browser,
        lambda d: next(iter(d.find_elements(By.CSS_SELECTOR, ".cr-Comment-text")), None),
        timeout=30,
    )
    # Officers' comments are shown as text, never interpreted as HTML.
    assert comment.text == "Cells under 10 <b>must</b> be suppressed."
    assert not comment.find_elements(By.TAG_NAME, "b")
    panel = browser.find_element(By.CSS_SELECTOR, ".cr-RequestsPanel")
    assert "returned" in panel.text.lower()
    assert "officer-olga on work/fig3.png" in panel.text
    assert "Figure 3 of the paper." in panel.text
