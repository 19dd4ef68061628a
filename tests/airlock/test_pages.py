"""The officers' and researchers' pages through a real hub: blind review, return for
changes and resubmission, tables, images, filters, the audit page, and the form guards."""

from __future__ import annotations

import re
import time

import requests

from .hub import PROJECT, Hub
from .test_hub_api import submit, xsrf

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)


def new_request(hub: Hub, files: dict[str, bytes]) -> str:
    token = hub.workspace_token("alice", PROJECT)
    r = submit(hub.submit_url, token, files, why=f"pages test {time.time()}")
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def vote(hub: Hub, s: requests.Session, rid: str, path: str, decision: str, comment: str) -> None:
    page = s.get(f"{hub.service_url}requests/{rid}/file", params={"path": path})
    assert page.status_code == 200, page.text
    r = s.post(
        f"{hub.service_url}requests/{rid}/vote",
        data={"path": path, "decision": decision, "comment": comment, "_xsrf": xsrf(page.text)},
    )
    assert r.status_code == 200, r.text


def finish(hub: Hub, s: requests.Session, rid: str) -> str:
    page = s.get(f"{hub.service_url}requests/{rid}")
    r = s.post(f"{hub.service_url}requests/{rid}/complete", data={"_xsrf": xsrf(page.text)})
    assert r.status_code == 200, r.text
    return r.text


def test_blind_review_return_and_resubmit(hub: Hub) -> None:
    rid = new_request(hub, {"out/t.csv": b"a,b\n1,2\n"})
    olga, oscar, alice = hub.browser("olga"), hub.browser("oscar"), hub.browser("alice")
    olga.get(f"{hub.service_url}requests/{rid}")
    vote(hub, olga, rid, "out/t.csv", "changes", "round the counts to 10")
    finish(hub, olga, rid)
    # oscar has not voted: he sees neither olga's vote nor her comment.
    page = oscar.get(f"{hub.service_url}requests/{rid}").text
    assert "olga" not in page and "round the counts" not in page
    # Nor does the author, while the round is open.
    assert "round the counts" not in alice.get(f"{hub.service_url}requests/{rid}").text
    vote(hub, oscar, rid, "out/t.csv", "approve", "")
    assert "returned" in finish(hub, oscar, rid)
    page = alice.get(f"{hub.service_url}requests/{rid}").text
    assert "round the counts to 10" in page and "Resubmit" in page

    # The workspace sends the changed file; a new round starts.
    token = hub.workspace_token("alice", PROJECT)
    meta_files = {"out/t.csv": b"a,b\n1,10\n"}
    r = submit(f"{hub.submit_url}/{rid}/resubmit", token, meta_files, why="rounded to 10 as asked")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "resubmitted" and r.json()["round"] == 2
    # Another project's workspace may not resubmit it.
    other = hub.workspace_token("alice", "furnace")
    r = submit(f"{hub.submit_url}/{rid}/resubmit", other, meta_files, project="furnace")
    assert r.status_code == 403

    # The author withdraws from the page.
    page = alice.get(f"{hub.service_url}requests/{rid}").text
    r = alice.post(f"{hub.service_url}requests/{rid}/withdraw", data={"_xsrf": xsrf(page)})
    assert r.status_code == 200 and "withdrawn" in r.text


def test_table_is_paged_and_sortable(hub: Hub) -> None:
    rows = "".join(f"r{i},{(i * 37) % 101}\n" for i in range(120))
    rid = new_request(hub, {"out/big.csv": ("name,score\n" + rows).encode()})
    olga = hub.browser("olga")
    olga.get(f"{hub.service_url}requests/{rid}")
    base = f"{hub.service_url}requests/{rid}/file"
    page = olga.get(base, params={"path": "out/big.csv"}).text
    assert "120 rows; page 1 of 3" in page and 'rel="next"' in page
    page = olga.get(
        base, params={"path": "out/big.csv", "sort": "score", "desc": "1", "page": "1"}
    ).text
    cells = re.findall(r"<td>r\d+</td><td>(\d+)</td>", page)
    scores = [int(c) for c in cells]
    assert scores == sorted(scores, reverse=True) and scores[0] == 100


def test_images_inline_only_for_officers(hub: Hub) -> None:
    rid = new_request(hub, {"out/fig.png": PNG})
    olga = hub.browser("olga")
    page = olga.get(f"{hub.service_url}requests/{rid}/file", params={"path": "out/fig.png"})
    assert 'img class="preview"' in page.text
    raw = olga.get(f"{hub.service_url}requests/{rid}/raw", params={"path": "out/fig.png"})
    assert raw.status_code == 200 and raw.content == PNG
    assert raw.headers["Content-Type"] == "image/png"
    assert raw.headers["Content-Security-Policy"].startswith("sandbox")
    assert raw.headers["X-Content-Type-Options"] == "nosniff"


def test_queue_filters_and_roles(hub: Hub) -> None:
    rid = new_request(hub, {"out/q.csv": b"x,y\n1,2\n"})
    olga = hub.browser("olga")
    assert rid in olga.get(f"{hub.service_url}queue").text
    assert rid not in olga.get(f"{hub.service_url}queue", params={"project": "furnace"}).text
    assert rid in olga.get(f"{hub.service_url}queue", params={"author": "alice"}).text
    assert olga.get(f"{hub.service_url}queue", params={"state": "bogus"}).status_code == 400
    # A researcher has no queue; a member-officer does not see their project's requests.
    assert hub.browser("bob").get(f"{hub.service_url}queue").status_code == 403
    assert rid not in hub.browser("otto").get(f"{hub.service_url}queue").text
    # Pages of 50, oldest first: the header counts the whole queue; bad page numbers are refused.
    first = olga.get(f"{hub.service_url}queue", params={"state": "all"}).text
    total = int(re.search(r"Requests 1&ndash;\d+ of (\d+)", first).group(1))  # type: ignore[union-attr]
    assert ('rel="next"' in first) == (total > 50) and 'rel="prev"' not in first
    beyond = olga.get(f"{hub.service_url}queue", params={"state": "all", "page": "99"}).text
    assert "Nothing here" in beyond and rid not in beyond
    last_page = -(-total // 50)
    assert f'rel="prev" href="/services/airlock/queue?state=all&amp;page={last_page}"' in beyond
    for bad in ("0", "-1", "two", "1e3"):
        assert olga.get(f"{hub.service_url}queue", params={"page": bad}).status_code == 400
    # Project members see the request on their page; outsiders do not.
    mine = hub.browser("bob").get(f"{hub.service_url}requests").text
    assert rid in mine and re.search(r"Requests 1&ndash;\d+ of \d+, newest first", mine)
    refused = hub.browser("bob").get(f"{hub.service_url}requests", params={"page": "0"})
    assert refused.status_code == 400
    eve = hub.browser("eve")
    assert rid not in eve.get(f"{hub.service_url}requests").text
    assert eve.get(f"{hub.service_url}requests/{rid}").status_code == 404


def test_audit_page_for_operators_only(hub: Hub) -> None:
    pat = hub.browser("pat")
    page = pat.get(f"{hub.service_url}audit")
    assert page.status_code == 200 and "verifies" in page.text
    export = pat.get(f"{hub.service_url}audit/export")
    assert export.status_code == 200 and export.text.startswith('{"')
    assert hub.browser("olga").get(f"{hub.service_url}audit").status_code == 403


def test_forms_need_the_xsrf_token(hub: Hub) -> None:
    rid = new_request(hub, {"out/x.csv": b"x,y\n3,4\n"})
    alice = hub.browser("alice")
    r = alice.post(f"{hub.service_url}requests/{rid}/withdraw", data={})
    assert r.status_code == 403
    page = alice.get(f"{hub.service_url}requests/{rid}").text
    assert "submitted" in page


def test_pages_carry_a_strict_policy(hub: Hub) -> None:
    page = hub.browser("olga").get(f"{hub.service_url}queue")
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "<script" not in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
