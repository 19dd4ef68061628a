"""Malformed input to the library's pages, as a signed-in person: a clear 4xx, never a
5xx, and nothing changes (seeded: a failure names an input that replays)."""

from __future__ import annotations

import random
from urllib.parse import quote

from tests.fuzzing import NASTY_TEXT, SEED, Answer, Client, nasty_query_value, query, server_errors

from .conftest import Library
from .test_pages import _xsrf

ROUNDS = 300


def _nasty_segment(rng: random.Random) -> str:
    if rng.random() < 0.3:
        return rng.choice(["strokes", "gauges", "v1", "V1.0", "x" * 40])
    return quote(rng.choice(NASTY_TEXT).encode("utf-8", "surrogatepass")[:500], safe="")


def _form(rng: random.Random, token: str) -> bytes:
    pairs = [f"_xsrf={quote(token)}"] if rng.random() < 0.9 else []
    for key in rng.sample(["project", "dataset", "version", "reason", "other"], rng.randrange(5)):
        pairs.append(f"{key}={nasty_query_value(rng)}")
    return "&".join(pairs).encode()


def test_malformed_requests_get_a_clear_answer_and_change_nothing(library: Library) -> None:
    session = library.hub.session("pat")
    token = _xsrf(session, f"{library.hub.library}provider")
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    # Straight to the service: the proxy in front refuses some of these URLs itself.
    client = Client(library.hub.service_url, headers={"Cookie": cookies, "Origin": library.hub.url})
    base = "/services/library/"
    before = library.governance.journal_entries()
    rng = random.Random(SEED)
    answers: list[Answer] = []
    try:
        for _ in range(ROUNDS):
            kind = rng.randrange(4)
            if kind == 0:
                answers.append(client.send("GET", base + query(rng, ["q", "page", "notice"])))
            elif kind == 1:
                path = f"{base}datasets/{_nasty_segment(rng)}/{_nasty_segment(rng)}"
                if rng.random() < 0.3:
                    path += rng.choice(["/croissant.json", "/datapackage.json", "/x.json"])
                answers.append(client.send("GET", path))
            else:
                action = rng.choice(["approve", "decline", "accept", "x"])
                answers.append(
                    client.send(
                        "POST", f"{base}provider/{action}", _form(rng, token),
                        {"Content-Type": "application/x-www-form-urlencoded"},
                    )
                )  # fmt: skip
    finally:
        client.close()
    failures = server_errors(answers)
    assert not failures, "\n".join(failures[:10]) + "\n" + library.hub.log_tail()
    assert sum(1 for a in answers if a.status == 200) > 10  # it reached the pages, signed in
    # No fuzzed form names an existing dataset version: nothing was decided.
    assert library.governance.journal_entries() == before


def _application_form(rng: random.Random, token: str) -> bytes:
    pairs = [f"_xsrf={quote(token)}"] if rng.random() < 0.9 else []
    fields = ["title", "purpose", "members", "dataset", "starts_on", "ends_on",
              "assessment_reference", "action", "reference", "outcome", "project", "tier",
              "reason", "application"]  # fmt: skip
    for key in rng.sample(fields, rng.randrange(len(fields))):
        pairs.append(f"{key}={nasty_query_value(rng)}")
    return "&".join(pairs).encode()


def test_malformed_applications_get_a_clear_answer_and_change_nothing(library: Library) -> None:
    session = library.hub.session("alice")
    token = _xsrf(session, f"{library.hub.library}applications")
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    client = Client(library.hub.service_url, headers={"Cookie": cookies, "Origin": library.hub.url})
    base = "/services/library/"
    before = (library.governance.journal_entries(), library.governance.list_applications())
    rng = random.Random(SEED)
    answers: list[Answer] = []
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    try:
        for _ in range(ROUNDS):
            kind = rng.randrange(4)
            number = rng.choice(["1", "999999", "0", "x", _nasty_segment(rng)])
            if kind == 0:
                answers.append(client.send("GET", f"{base}applications/{number}"))
            elif kind == 1:
                answers.append(
                    client.send("POST", f"{base}applications/new", _application_form(rng, token),
                                form)
                )  # fmt: skip
            elif kind == 2:
                action = rng.choice(["save", "submit", "sign", "assess", "approve", "decline"])
                path = f"{base}applications/{number}/{action}"
                answers.append(client.send("POST", path, _application_form(rng, token), form))
            else:
                path = f"{base}provider/applications/{rng.choice(['approve', 'decline'])}"
                answers.append(client.send("POST", path, _application_form(rng, token), form))
    finally:
        client.close()
    failures = server_errors(answers)
    assert not failures, "\n".join(failures[:10]) + "\n" + library.hub.log_tail()
    assert sum(1 for a in answers if a.status in (400, 403, 404, 409)) > ROUNDS // 2
    assert (library.governance.journal_entries(), library.governance.list_applications()) == before
