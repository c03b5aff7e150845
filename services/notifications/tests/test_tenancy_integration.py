"""Staff see the mail log, reminders and staff lists of their own partnerships only; a
programme-wide manager sees all (real broker, database and HTTP)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.infra


async def test_staff_of_one_partnership_cannot_read_anothers_mail_log_reminders_or_staff(
        run_service, upstream, token, helpers, stored):
    service = run_service("notifications")
    uid = helpers.uid()
    a, b = f"pa-{uid}", f"pb-{uid}"
    apps = {a: f"app-a-{uid}", b: f"app-b-{uid}"}
    programme = token("programme_manager", subject="pw", programme=True)
    for p in apps:
        added = httpx.post(f"{service.url}/staff", headers=token("programme_manager", partnership_ids=(p,)), json={
            "partnership_id": p, "role": "assessor", "name": f"Assessor of {p}", "email": f"assessor-{p}@example.org"})
        assert added.status_code == 201, added.text
    await upstream.publish(*(upstream.call(f"call-{p}", contact_email=f"contact-{p}@example.org", partnership_id=p)
                             for p in apps))
    await stored("calls", {"_id": {"$in": [f"call-{p}" for p in apps]}}, "the calls", count=2)
    for p, app in apps.items():
        visitor = helpers.participant(f"Visitor {p}", "FR", "Lyon", "fr")
        host = helpers.participant(f"Host {p}", "DE", "Jena", "de")
        await upstream.publish(upstream.submitted(app, f"call-{p}", visitor, host, partnership_id=p),
                               upstream.host_accepted(app, f"call-{p}", host))
    await stored("notifications", {"application_id": {"$in": list(apps.values())}}, "the emails", count=8)
    await stored("reminders", {"application_id": {"$in": list(apps.values())}}, "the reminders", count=4)

    def get(path: str, headers: dict, **params) -> httpx.Response:
        return httpx.get(f"{service.url}{path}", headers=headers, params=params)

    everything = get("/notifications", programme).json()
    assert sorted(n["application_id"] for n in everything) == [apps[a]] * 4 + [apps[b]] * 4
    for role in ("assessor", "grant_officer", "programme_manager"):
        staff_a = token(role, subject=f"{role}-a", partnership_ids=(a,))
        log = get("/notifications", staff_a).json()
        assert log and {n["application_id"] for n in log} == {apps[a]}, role
        assert {n["partnership_id"] for n in log} == {a}
        assert get("/notifications", staff_a, application_id=apps[b]).json() == []
        assert len(get("/notifications", staff_a, application_id=apps[a]).json()) == 4  # 3 submitted, 1 accepted
        theirs = next(n["notification_id"] for n in everything if n["application_id"] == apps[b])
        mine = next(n["notification_id"] for n in everything if n["application_id"] == apps[a])
        assert get(f"/notifications/{theirs}", staff_a).status_code == 403, role
        assert get(f"/notifications/{mine}", staff_a).json()["context"]["visitor_name"] == f"Visitor {a}"
        assert get(f"/applications/{apps[b]}/reminders", staff_a).json() == []
        assert len(get(f"/applications/{apps[a]}/reminders", staff_a).json()) == 2
        assert get("/staff", staff_a, partnership_id=b).status_code == 403
        assert [s["email"] for s in get("/staff", staff_a, partnership_id=a).json()] == [f"assessor-{a}@example.org"]
    # A staff role held in no partnership acts nowhere (6ab1bc5); the programme-wide manager sees every partnership's.
    assert get("/notifications", token("assessor", subject="nobody")).status_code == 403
    assert len(get(f"/applications/{apps[b]}/reminders", programme).json()) == 2
    assert get(f"/notifications/{theirs}", programme).status_code == 200
    assert get("/staff", programme, partnership_id=b).status_code == 200
    assert get("/notifications", token("visitor")).status_code == 403
