"""Issue 13 (g), calls change until they open: `PATCH /calls/{id}` against the call's revision,
only by its partnership's manager, only before its opening day; each change a CallUpdated with
the whole call and its budget's change; a refusal names the field and rule and stores nothing.
The service a real process on the real broker and database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cx_shared.events.applications import CallUpdated
from cx_shared.testing.kafka import TopicWatcher, topic_names
from cx_shared.topics import APPLICATIONS

TODAY = datetime.now(UTC).date()


def refusal(response, status: int) -> set[tuple[str, str]]:
    assert response.status_code == status, response.text
    return {(e["field"], e["rule"]) for e in response.json().get("errors", [])}


async def test_issue_13g_a_call_changes_only_before_it_opens(programme, infra):
    p = programme
    opens = TODAY + timedelta(days=20)
    partnership, call = await p.partnership_and_call(opens_on=opens.isoformat(), exchanges_end_on=None)
    url = f"/calls/{call['call_id']}"
    assert call["revision"] == 1

    async def patch(body: dict, headers: dict | None = None):
        return await p.client.patch(url, json=body, headers=headers or p.pm)

    # Who: the partnership's own manager (or a programme-wide one); nobody else.
    assessor = p.token("assessor", subject="ann", partnership_ids=(partnership["partnership_id"],))
    other_manager = p.token("programme_manager", subject="mo", partnership_ids=("ptn-other",))
    assert (await patch({"revision": 1, "title": "x"}, assessor)).status_code == 403
    assert (await patch({"revision": 1, "title": "x"}, other_manager)).status_code == 403
    # What: each broken rule named, nothing stored.
    cases = {
        ("closes_on", "closes_after_opens"): {"closes_on": (opens - timedelta(days=1)).isoformat()},
        ("opens_on", "not_before_today"): {"opens_on": (TODAY - timedelta(days=1)).isoformat()},
        ("exchanges_end_on", "after_opening"): {"exchanges_end_on": (opens - timedelta(days=1)).isoformat()},
        ("eligible_countries", "iso_3166"): {"eligible_countries": ["XX"]},
        ("title", "not_null"): {"title": None},
        ("budget_cents", "greater_than_equal"): {"budget_cents": -1},
        ("partnership_id", "extra_forbidden"): {"partnership_id": "ptn-other"},
    }
    for rule, change in cases.items():
        assert rule in refusal(await patch({"revision": 1, **change}), 422), (rule, change)
    assert ("revision", "") in refusal(await patch({"revision": 2, "title": "x"}), 409)
    assert (await p.ok("GET", url))["revision"] == 1

    async with TopicWatcher(infra.kafka, topic_names(p.namespace, APPLICATIONS)) as watch:
        manager = p.token("programme_manager", subject="mp", partnership_ids=(partnership["partnership_id"],))
        end = TODAY + timedelta(days=120)
        changed = await p.ok("PATCH", url, {"revision": 1, "title": "Exchanges 2026, spring", "budget_cents": 4_000_000,
                                            "opens_on": (opens + timedelta(days=7)).isoformat(),
                                            "exchanges_end_on": end.isoformat(), "eligible_countries": ["FR", "DE"]},
                             manager)
        assert (changed["revision"], changed["budget_cents"], changed["eligible_countries"]) == (2, 4_000_000,
                                                                                              ["FR", "DE"])
        assert changed["open"] is False and changed["assessment_mode"] == call["assessment_mode"]  # kept
        cleared = await p.ok("PATCH", url, {"revision": 2, "exchanges_end_on": None}, manager)
        assert cleared["revision"] == 3 and cleared["exchanges_end_on"] is None
        assert cleared["title"] == "Exchanges 2026, spring"
        events = await watch.wait_for(lambda: len(watch.of_type(CallUpdated, call["call_id"])) == 2 and
                                      watch.of_type(CallUpdated, call["call_id"]), what="two call.updated")
    first, second = (e.data for e in events)
    assert (first["revision"], first["budget_change_cents"], first["updated_by"]) == (2, -1_000_000, "mp")
    assert first["exchanges_end_on"] == end.isoformat() and first["partnership_id"] == partnership["partnership_id"]
    assert (second["revision"], second["budget_change_cents"], second["exchanges_end_on"]) == (3, 0, None)
    stored = await p.db.calls.find_one({"_id": call["call_id"]})
    assert "budget_change_cents" not in stored and "updated_by" not in stored  # the event's, not the call's

    # Once it has opened, or once cancelled, it changes no more: the rule is named.
    _, opened = await p.partnership_and_call()
    response = await p.client.patch(f"/calls/{opened['call_id']}", json={"revision": 1, "title": "x"}, headers=p.pm)
    assert ("opens_on", "before_opening") in refusal(response, 409)
    await p.ok("POST", f"{url}/cancellation", {"reason": "no money after all"})
    assert ("status", "before_opening") in refusal(await patch({"revision": 3, "title": "x"}), 409)
    assert (await p.ok("GET", url))["revision"] == 3


async def test_calls_are_listed_a_page_at_a_time(programme):
    """Issue 23, finding 6: GET /calls answered every call at once. The body stays a list (existing
    clients read it as before); `limit` bounds it (500 at most) and `Link` names the next page."""
    p = programme
    partnership, first = await p.partnership_and_call()
    body = {k: first[k] for k in ("partnership_id", "title", "opens_on", "closes_on", "budget_cents",
                                  "assessment_mode")}
    ids = [first["call_id"]] + [(await p.ok("POST", "/calls", body, status=201))["call_id"] for _ in range(2)]
    params = {"partnership_id": partnership["partnership_id"], "limit": 2}
    page = await p.get("/calls", params=params)
    assert page.status_code == 200 and len(page.json()) == 2 and 'rel="next"' in page.headers["link"]
    following = page.headers["link"].split(">")[0].lstrip("<")
    rest = await p.get(following)
    assert rest.status_code == 200 and "link" not in rest.headers
    assert sorted(c["call_id"] for c in page.json() + rest.json()) == sorted(ids)
    assert len(await p.ok("GET", "/calls", params={"partnership_id": partnership["partnership_id"]})) == 3
    assert (await p.get("/calls", params={"limit": 501})).status_code == 422
