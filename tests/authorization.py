"""The authorization matrix: every route of the four services, who may pass it.

One row per route. `allowed` names the principals that get past authorization (any answer
but 401, 403 or 404: a 409 or 422 about the state of things is a pass). Everybody else must
be refused: anonymous callers with 401 (unless the route is public), the others with 403, or
404 where the route hides that the resource exists. A 5xx fails the matrix wherever it is.
`tests/test_authorization_matrix_e2e.py` runs the table against the four running services.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from cx_shared.testing.consortium import consortium

ANONYMOUS = "anonymous"
VISITOR, OTHER_VISITOR, HOST, OTHER_HOST = "visitor", "other_visitor", "host", "other_host"
ASSESSOR, OFFICER, MANAGER = "assessor", "grant_officer", "manager"  # of the exchange's partnership
ASSESSOR_B, OFFICER_B, MANAGER_B = "assessor_b", "grant_officer_b", "manager_b"  # of another partnership
PROGRAMME = "programme_manager"  # programme-wide (the explicit claim)
# Roles are held per partnership (issue 23, 4): a principal holding one role in A and another in B
# passes where the single-role principal of A or that of B passes, and nowhere else (derived for
# every row below).
ASSESSOR_OFFICER_B, OFFICER_ASSESSOR_B = "assessor_officer_b", "officer_assessor_b"
ASSESSOR_MANAGER_B = "assessor_manager_b"
HOLDING_BOTH = {ASSESSOR_OFFICER_B: (ASSESSOR, OFFICER_B), OFFICER_ASSESSOR_B: (OFFICER, ASSESSOR_B),
                ASSESSOR_MANAGER_B: (ASSESSOR, MANAGER_B)}

PRINCIPALS = (ANONYMOUS, VISITOR, OTHER_VISITOR, HOST, OTHER_HOST, ASSESSOR, OFFICER, MANAGER,
              ASSESSOR_B, OFFICER_B, MANAGER_B, PROGRAMME, ASSESSOR_OFFICER_B, OFFICER_ASSESSOR_B,
              ASSESSOR_MANAGER_B)
SIGNED_IN = frozenset(PRINCIPALS) - {ANONYMOUS}
EVERYBODY = frozenset(PRINCIPALS)
STAFF_A = frozenset({ASSESSOR, OFFICER, MANAGER, PROGRAMME})
MANAGERS = frozenset({MANAGER, MANAGER_B, PROGRAMME})
OFFICERS_A = frozenset({OFFICER, MANAGER, PROGRAMME})
STAFF = STAFF_A | {ASSESSOR_B, OFFICER_B, MANAGER_B}
VISITORS, HOSTS = frozenset({VISITOR, OTHER_VISITOR}), frozenset({HOST, OTHER_HOST})

Value = Callable[[Any], Any]  # of the scenario (ids, the call's dates...)


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    path: str
    allowed: frozenset[str]
    body: Value | None = None
    query: Value | None = None
    fresh: str | None = None  # a path parameter made anew for every request (the route destroys it):
    # subscription_id, call_id, export_id or erasure_id
    why: str = ""



def weekday(days: int) -> str:
    day = date.today() + timedelta(days=days)
    return str(day + timedelta(days=(7 - day.weekday()) % 7))


def organisation(s) -> dict:
    return {"legal_name": f"Matrix cluster {s.suffix}", "country": "FR", "city": "Lyon",
            "organisation_type": "cluster_organisation", "ecosystems": ["electronics"], "roles": ["visitor"],
            "contact": {"name": "Matrix contact", "email": f"matrix-{s.suffix}@example.fr", "language": "en"}}


REASON = {"reason": "matrix"}
APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS = "applications", "assessment", "grants", "notifications"


def ops(service: str) -> list[Route]:
    return [Route(service, "GET", "/health/live", EVERYBODY, why="probe"),
            Route(service, "GET", "/health/ready", EVERYBODY, why="probe"),
            Route(service, "GET", "/asyncapi.json", EVERYBODY, why="the event catalog is public"),
            Route(service, "GET", "/asyncapi", EVERYBODY, why="the event catalog is public"),
            Route(service, "GET", "/metrics", EVERYBODY,
                  why="Prometheus scrapes without a token; kept off the public ingress (README, Monitoring)"),
            Route(service, "POST", "/dev/tokens", EVERYBODY, body=lambda s: {"subject": "x", "roles": ["visitor"]},
                  why="on only in local development (DEV_TOKENS); off, it answers 404 to all")]


TABLE: list[Route] = [
    *ops(APPLICATIONS), *ops(ASSESSMENT), *ops(GRANTS), *ops(NOTIFICATIONS),
    # applications
    Route(APPLICATIONS, "POST", "/organisations", VISITORS | HOSTS | MANAGERS, body=organisation),
    Route(APPLICATIONS, "GET", "/organisations", SIGNED_IN),
    Route(APPLICATIONS, "GET", "/organisations/{organisation_id}", SIGNED_IN),
    Route(APPLICATIONS, "PATCH", "/organisations/{organisation_id}", frozenset({VISITOR, MANAGER, PROGRAMME}),
          body=lambda s: {"revision": 1, "city": "Madrid"},
          why="the visitor joined A: A's manager acts for it (the host, which joined nothing, he does not)"),
    Route(APPLICATIONS, "POST", "/organisations/{organisation_id}/partnerships", frozenset({VISITOR}),
          body=lambda s: {"partnership_id": s.partnership_id},
          why="membership is the organisation's own act; joined already: a pass is a 409"),
    Route(APPLICATIONS, "POST", "/partnerships", frozenset({PROGRAMME}),
          body=lambda s: {"name": "Matrix partnership", "members": consortium()}),
    Route(APPLICATIONS, "GET", "/partnerships", SIGNED_IN, why="a list: staff see their partnerships, others none"),
    Route(APPLICATIONS, "GET", "/partnerships/{partnership_id}", SIGNED_IN,
          why="public fields; its contact e-mail only for its staff (test_membership_integration)"),
    Route(APPLICATIONS, "PATCH", "/partnerships/{partnership_id}", frozenset({MANAGER, PROGRAMME}),
          body=lambda s: {"revision": 1, "contact_email": f"matrix-{s.suffix}@example.eu"},
          why="changed already: a pass is a 409"),
    Route(APPLICATIONS, "POST", "/calls", frozenset({MANAGER, PROGRAMME}),
          body=lambda s: {"partnership_id": s.partnership_id, "title": "Matrix call",
                          "opens_on": str(date.today()), "closes_on": weekday(100), "budget_cents": 100_000}),
    Route(APPLICATIONS, "GET", "/calls", SIGNED_IN),
    Route(APPLICATIONS, "GET", "/calls/{call_id}", SIGNED_IN),
    Route(APPLICATIONS, "PATCH", "/calls/{call_id}", frozenset({MANAGER, PROGRAMME}),
          body=lambda s: {"revision": 1, "title": "Matrix call, renamed"}, why="opened already: a pass is a 409"),
    Route(APPLICATIONS, "POST", "/calls/{call_id}/closure", frozenset({MANAGER, PROGRAMME}), body=lambda s: REASON,
          fresh="call_id", why="on a call of its own: the route ends it"),
    Route(APPLICATIONS, "POST", "/calls/{call_id}/cancellation", frozenset({MANAGER, PROGRAMME}),
          body=lambda s: REASON, fresh="call_id", why="on a call of its own: the route ends it"),
    Route(APPLICATIONS, "POST", "/offers", frozenset({HOST, PROGRAMME}),
          body=lambda s: {"host_id": s.host_id, "title": "Matrix offer", "ecosystem": "electronics",
                          "window_start": weekday(30), "window_end": weekday(120), "capacity": 2},
          why="the host joined no partnership: its exchange in A gives A's manager no right over it"),
    Route(APPLICATIONS, "GET", "/offers", SIGNED_IN),
    Route(APPLICATIONS, "GET", "/offers/{offer_id}", SIGNED_IN),
    Route(APPLICATIONS, "PATCH", "/offers/{offer_id}", frozenset({HOST, PROGRAMME}),
          body=lambda s: {"revision": 1, "capacity": 4}, why="changed already: a pass is a 409"),
    Route(APPLICATIONS, "POST", "/offers/{offer_id}/withdrawal", frozenset({HOST, PROGRAMME}),
          body=lambda s: REASON, why="withdrawn already: a pass is a 409"),
    Route(APPLICATIONS, "POST", "/applications", frozenset({VISITOR}), body=lambda s: s.application_body()),
    Route(APPLICATIONS, "GET", "/applications", SIGNED_IN, why="a list: each sees only what is his"),
    Route(APPLICATIONS, "GET", "/applications/{application_id}", frozenset({VISITOR, HOST}) | STAFF_A),
    Route(APPLICATIONS, "GET", "/applications/{application_id}/timeline", frozenset({VISITOR, HOST}) | STAFF_A),
    Route(APPLICATIONS, "PUT", "/applications/{application_id}/preparation", frozenset({VISITOR}),
          body=lambda s: {"travel_booked": True}),
    Route(APPLICATIONS, "POST", "/applications/{application_id}/start", frozenset({HOST}), body=lambda s: {},
          why="the host confirms the arrival"),
    Route(APPLICATIONS, "POST", "/applications/{application_id}/complete", frozenset({HOST}), body=lambda s: {}),
    Route(APPLICATIONS, "POST", "/applications/{application_id}/no-show", frozenset({HOST}), body=lambda s: REASON),
    Route(APPLICATIONS, "POST", "/applications/{application_id}/report", frozenset({VISITOR}),
          body=lambda s: {"summary": "Matrix report"}),
    Route(APPLICATIONS, "POST", "/applications/{application_id}/host-feedback", frozenset({HOST}),
          body=lambda s: {"satisfaction": 4}),
    Route(APPLICATIONS, "POST", "/applications/{application_id}/report/review", OFFICERS_A,
          body=lambda s: {"accept": True}),
    Route(APPLICATIONS, "GET", "/indicators", OFFICERS_A | {OFFICER_B, MANAGER_B}, why="each his partnerships"),
    Route(APPLICATIONS, "GET", "/indicators.csv", OFFICERS_A | {OFFICER_B, MANAGER_B}),
    Route(APPLICATIONS, "GET", "/indicators/dashboard", OFFICERS_A | {OFFICER_B, MANAGER_B}),
    Route(APPLICATIONS, "POST", "/indicators/dashboard/links", OFFICERS_A | {OFFICER_B, MANAGER_B},
          why="a one-time link that opens the dashboard as the caller"),
    # assessment
    Route(ASSESSMENT, "GET", "/calls/{call_id}", frozenset({ASSESSOR, MANAGER, PROGRAMME})),
    Route(ASSESSMENT, "PUT", "/calls/{call_id}/rule-set", frozenset({MANAGER, PROGRAMME}), body=lambda s: {}),
    Route(ASSESSMENT, "POST", "/calls/{call_id}/rounds", frozenset({MANAGER, PROGRAMME})),
    Route(ASSESSMENT, "GET", "/queue", frozenset({ASSESSOR, ASSESSOR_B}), why="each his partnerships' queue"),
    Route(ASSESSMENT, "POST", "/applications/{application_id}/claim", frozenset({ASSESSOR})),
    Route(ASSESSMENT, "POST", "/applications/{application_id}/conflicts", frozenset({ASSESSOR}), body=lambda s: REASON),
    Route(ASSESSMENT, "POST", "/applications/{application_id}/scores", frozenset({ASSESSOR}),
          body=lambda s: {"scores": {"relevance": 4}}),
    Route(ASSESSMENT, "POST", "/applications/{application_id}/override", frozenset({MANAGER, PROGRAMME}),
          body=lambda s: {"decision": "approved", "justification": "matrix"}),
    Route(ASSESSMENT, "POST", "/applications/{application_id}/appeal", frozenset({VISITOR}), body=lambda s: REASON),
    Route(ASSESSMENT, "POST", "/applications/{application_id}/host-decision", frozenset({HOST}),
          body=lambda s: {"accept": True}, why="decided already: a pass is a 409"),
    Route(ASSESSMENT, "GET", "/applications/{application_id}", frozenset({VISITOR, HOST, ASSESSOR, MANAGER, PROGRAMME}),
          why="the assessment file: its parties and the partnership's assessors and managers"),
    # grants
    Route(GRANTS, "GET", "/budgets", OFFICERS_A | {OFFICER_B, MANAGER_B}, why="each his partnerships' budgets"),
    Route(GRANTS, "GET", "/calls/{call_id}/budget", STAFF_A, why="assessors see the envelope they decide within"),
    Route(GRANTS, "POST", "/calls/{call_id}/budget/top-ups", OFFICERS_A,
          body=lambda s: {"amount_cents": 100, "reason": "matrix"}),
    Route(GRANTS, "GET", "/calls/{call_id}/commitments", OFFICERS_A),
    Route(GRANTS, "GET", "/calls/{call_id}/payments", OFFICERS_A),
    Route(GRANTS, "GET", "/calls/{call_id}/ledger", OFFICERS_A),
    Route(GRANTS, "GET", "/calls/{call_id}/reconciliation", OFFICERS_A),
    Route(GRANTS, "GET", "/commitments/{application_id}", frozenset({VISITOR}) | OFFICERS_A),
    Route(GRANTS, "POST", "/commitments/{application_id}/report-acceptance", OFFICERS_A,
          why="initiates the balance from the accepted report: none yet, a pass is a 409"),
    Route(GRANTS, "GET", "/calls/{call_id}/actions", OFFICERS_A, why="four eyes: the actions awaiting a second officer"),
    Route(GRANTS, "GET", "/actions/{action_id}", OFFICERS_A),
    Route(GRANTS, "POST", "/actions/{action_id}/verification", OFFICERS_A,
          why="an officer of A other than its initiator verifies once; a later pass is a 409"),
    Route(GRANTS, "POST", "/actions/{action_id}/rejection", OFFICERS_A, body=lambda s: REASON,
          why="pending or decided: a pass is a 409 once verified"),
    Route(GRANTS, "GET", "/agreements/{application_id}", frozenset({VISITOR}) | OFFICERS_A),
    Route(GRANTS, "GET", "/agreements/{application_id}/document", frozenset({VISITOR}) | OFFICERS_A),
    Route(GRANTS, "POST", "/agreements/{application_id}/acceptance", frozenset({VISITOR})),
    Route(GRANTS, "GET", "/exchanges/{application_id}/payments", frozenset({VISITOR}) | OFFICERS_A),
    Route(GRANTS, "GET", "/lump-sums/quote", SIGNED_IN,
          query=lambda s: {"from_city": "Madrid", "from_country": "ES", "to_city": "Munich", "to_country": "DE",
                           "working_days": 5}),
    Route(GRANTS, "POST", "/budgets", OFFICERS_A,
          body=lambda s: {"call_id": s.call_id, "partnership_id": s.partnership_id, "budget_cents": 1000},
          why="the call's budget exists already: a pass is a 409"),
    # notifications
    Route(NOTIFICATIONS, "GET", "/notifications", STAFF, why="the mail log is for staff; a list: their partnerships'"),
    Route(NOTIFICATIONS, "GET", "/notifications/{notification_id}", STAFF_A),
    Route(NOTIFICATIONS, "GET", "/applications/{application_id}/reminders", STAFF,
          why="a list filtered by the caller's partnerships: another partnership's staff get none"),
    Route(NOTIFICATIONS, "POST", "/staff", frozenset({MANAGER, PROGRAMME}),
          body=lambda s: {"partnership_id": s.partnership_id, "role": "assessor", "name": "Matrix assessor",
                          "email": f"assessor-{s.suffix}@example.eu"}),
    Route(NOTIFICATIONS, "GET", "/staff", STAFF_A,
          query=lambda s: {"partnership_id": s.partnership_id}),
    Route(NOTIFICATIONS, "POST", "/webhooks/subscriptions", frozenset({OFFICER, MANAGER, PROGRAMME}),
          body=lambda s: s.subscription_body(), why="scoped to partnership A: staff of A who subscribe"),
    Route(NOTIFICATIONS, "GET", "/webhooks/subscriptions", frozenset({MANAGER, MANAGER_B, PROGRAMME, OFFICER,
                                                                       OFFICER_B}), why="a list: his scope only"),
    *[Route(NOTIFICATIONS, method, f"/webhooks/subscriptions/{{subscription_id}}{tail}",
            frozenset({MANAGER, PROGRAMME}), fresh="subscription_id" if method != "GET" else None,
            why="made by the programme manager for A: A's managers manage it; officers only their own")
      for method, tail in (("GET", ""), ("GET", "/deliveries"), ("POST", "/enable"), ("POST", "/disable"),
                           ("DELETE", ""))],
    Route(NOTIFICATIONS, "POST", "/webhooks/subscriptions/{subscription_id}/rotation", frozenset({PROGRAMME}),
          fresh="subscription_id", why="the new secret goes to the subscription's owner only (the programme "
                                       "manager made it); A's managers may suspend or delete it"),
    Route(NOTIFICATIONS, "GET", "/unsubscribe/{token}", EVERYBODY,
          why="the link in an email: its opaque token is the credential (logged as {token})"),
    Route(NOTIFICATIONS, "POST", "/unsubscribe/{token}", EVERYBODY, why="RFC 8058 one-click, to the link itself"),
    Route(NOTIFICATIONS, "POST", "/unsubscribe", EVERYBODY, body=lambda s: {"token": s.token},
          why="the page's button: the token in the body"),
    Route(NOTIFICATIONS, "POST", "/resubscribe", EVERYBODY, body=lambda s: {"token": s.token}),
    Route(NOTIFICATIONS, "GET", "/confirmations/{confirmation_token}", EVERYBODY,
          why="the link in the first email to a contact address: its token is the credential"),
    Route(NOTIFICATIONS, "POST", "/confirmations", EVERYBODY, body=lambda s: {"token": s.confirmation_token},
          why="the page's button: the token in the body"),
    # Last: these end the exchange (a later pass is a 409, which is still a pass).
    Route(APPLICATIONS, "POST", "/applications/{application_id}/close", frozenset({MANAGER, PROGRAMME}),
          body=lambda s: REASON),
    Route(GRANTS, "POST", "/commitments/{application_id}/cancellation", OFFICERS_A, body=lambda s: REASON),
    Route(APPLICATIONS, "POST", "/applications/{application_id}/cancel", frozenset({MANAGER, PROGRAMME}),
          body=lambda s: REASON),
    Route(APPLICATIONS, "POST", "/applications/{application_id}/withdraw", frozenset({VISITOR}),
          body=lambda s: REASON),
    Route(APPLICATIONS, "POST", "/personal-data/exports", frozenset({VISITOR, MANAGER, PROGRAMME}),
          body=lambda s: {"subject_id": s.visitor_id}, why="the data subject, or a manager of its partnerships"),
    Route(APPLICATIONS, "GET", "/personal-data/exports/{export_id}", frozenset({VISITOR, MANAGER, PROGRAMME}),
          fresh="export_id", why="202 until every service answered: a pass"),
    # Very last: an erasure forgets the visitor's contact person (and the unsubscribe link of their address).
    Route(APPLICATIONS, "POST", "/personal-data/erasures", frozenset({VISITOR, MANAGER, PROGRAMME}),
          body=lambda s: {"subject_id": s.visitor_id}, why="the data subject, or a manager of its partnerships"),
    Route(APPLICATIONS, "GET", "/personal-data/erasures/{erasure_id}", frozenset({VISITOR, MANAGER, PROGRAMME}),
          fresh="erasure_id"),
    # After every row that needs the visitor a member of A: it leaves (its own act).
    Route(APPLICATIONS, "DELETE", "/organisations/{organisation_id}/partnerships/{partnership_id}",
          frozenset({VISITOR}), why="membership is the organisation's own act"),
]


def _holding_both(route: Route) -> Route:
    both = {name for name, roles in HOLDING_BOTH.items() if route.allowed & set(roles)}
    return replace(route, allowed=route.allowed | both)


TABLE = [_holding_both(route) for route in TABLE]
