"""Debian's headless Chromium through Debian's chromedriver, for every browser test.

Nothing is downloaded: Selenium Manager is kept offline, and the browser's own background
networking and component updates are off, so a test's only traffic goes to the servers
it started.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def chromium(
    *,
    download_dir: Path | None = None,
    profile_dir: Path | None = None,
    window: tuple[int, int] | None = None,
    page_load_timeout: float = 30,
    extra_args: tuple[str, ...] = (),
) -> Any:
    """A started WebDriver; the caller quits it. ``extra_args`` are more Chromium flags
    (the identity tests trust their hub's demo certificate by its key's hash)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        *extra_args,
    ):
        options.add_argument(arg)
    if window is not None:
        options.add_argument(f"--window-size={window[0]},{window[1]}")
    if profile_dir is not None:
        options.add_argument(f"--user-data-dir={profile_dir}")
    if download_dir is not None:
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(download_dir),
                "download.prompt_for_download": False,
            },
        )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    return driver
