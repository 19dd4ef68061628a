"""In Chromium, by keyboard: an operator, signed in, suspends and reopens a project, adds
a member, retires an image (and allows it again) and disables a person, through the
console's pages; each act lands in the registry and the journal as theirs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cleanroom.registry.people import People

from tests.airlock.test_browser_flow import press

from .conftest import Library
from .test_browser import _button, _go, _login, browsers  # noqa: F401

pytestmark = pytest.mark.browser


def _notice(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CLASS_NAME, "notice").text)


def _type_and_enter(driver: Any, scope: Any, name: str, text: str) -> None:
    """Type ``text`` into the field ``name`` within ``scope``; Enter submits its form."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    field = scope.find_element(By.NAME, name)
    field.send_keys(text)
    press(driver, field, Keys.ENTER)


def test_an_operator_runs_the_console_by_keyboard(
    library: Library,
    browsers: Callable[[], Any],  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    gov = library.governance
    start = len(gov.journal_entries())  # this test's acts only: others retire images too
    gov.create_project("console-web", "Console in the browser", actor="olga")
    gov.add_user("fred", ["researcher"], actor="seed")
    olga = _login(browsers, library, "olga")
    _go(olga, "Applications to decide")
    _go(olga, "Projects")
    _type_and_enter(olga, olga, "q", "console-web")
    _go(olga, "console-web")
    press(olga, _button(olga, "Suspend console-web"), Keys.ENTER)
    assert _notice(olga) == "project console-web is suspended"
    assert olga.find_element(By.ID, "status").text.lower() == "suspended"
    press(olga, _button(olga, "Approve (reopen) console-web"), Keys.ENTER)
    assert _notice(olga) == "project console-web is approved"
    assert library.registry.get_project("console-web").status == "approved"
    add = olga.find_element(By.XPATH, "//form[contains(@action, '/add-member')]")
    _type_and_enter(olga, add, "user", "carol")
    assert _notice(olga) == "carol is now a member of console-web"
    assert "carol" in olga.find_element(By.ID, "members").text
    assert library.registry.get_project("console-web").members == ("carol",)

    _go(olga, "Images")
    row = olga.find_element(By.ID, "image-pytorch-cuda")
    _type_and_enter(olga, row, "reason", "superseded by a newer CUDA")
    assert _notice(olga) == "image pytorch-cuda is retired: no new workspace runs it"
    assert library.registry.retired_images() == {"pytorch-cuda"}
    press(olga, _button(olga, "Allow pytorch-cuda"), Keys.ENTER)  # as the other tests found it
    assert library.registry.retired_images() == set()

    _go(olga, "People")
    _type_and_enter(olga, olga, "q", "fred")
    _go(olga, "fred")
    disable = olga.find_element(By.XPATH, "//form[contains(@action, '/disable')]")
    _type_and_enter(olga, disable, "reason", "left the project team")
    assert _notice(olga) == "fred is disabled"
    assert olga.find_element(By.ID, "account").text.lower() == "disabled"
    assert People(library.registry).account_block("fred").endswith("left the project team")

    acts = [
        (e.actor, e.action, e.subject)
        for e in gov.journal_entries()[start:]
        if e.subject in ("project:console-web", "image:pytorch-cuda", "user:fred")
        and e.actor == "olga"
    ]
    assert acts == [
        ("olga", "project.create", "project:console-web"),
        ("olga", "project.status", "project:console-web"),
        ("olga", "project.status", "project:console-web"),
        ("olga", "member.add", "project:console-web"),
        ("olga", "image.retired", "image:pytorch-cuda"),
        ("olga", "image.allowed", "image:pytorch-cuda"),
        ("olga", "account.disable", "user:fred"),
    ]
