"""Who may see and act on what (pure).

A principal acts for an organisation when its token names that organisation or when it
enrolled it (its owner); a programme manager acts for the organisations that are members of
his partnerships (a programme-wide manager for all). An organisation is a member of the
partnerships it joined by its own act (its `memberships`); applying to a call, as visitor or
host, makes it a member of nothing. Staff roles count only in the partnership that holds
them: an assessor of A who is a grant officer of B is no grant officer in A.

An exchange gives its partnership's staff rights over that exchange only: they see it, and
the contact person of its visitor (who applied) and of its host once the host accepted the
visit, as needed to run it; never the parties' enrolments, offers, erasure or export.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from cx_shared.auth import Principal
from cx_shared.vocabulary import Role

from applications.audience import Viewer
from applications.domain import MEMBER

STAFF = (Role.ASSESSOR, Role.GRANT_OFFICER, Role.PROGRAMME_MANAGER)
MEMBERSHIPS = "memberships"  # on an organisation: {partnership_id: {"state", "since", "by"}}
PRIVATE = ("contact", "owner", MEMBERSHIPS)  # an organisation's fields shown only with its contact


def programme_wide(who: Principal) -> bool:
    """A manager whose token carries the explicit programme-wide claim (never a missing one)."""
    return who.programme_wide


def is_party(who: Principal, organisation: Mapping[str, Any]) -> bool:
    """The organisation itself: its token, or the subject that enrolled it."""
    return (who.organisation_id == organisation["organisation_id"]
            or (organisation.get("owner") is not None and organisation.get("owner") == who.subject))


def member_of(organisation: Mapping[str, Any]) -> set[str]:
    """The partnerships the organisation is a member of (joined, not merely applied in)."""
    return {p for p, m in (organisation.get(MEMBERSHIPS) or {}).items() if m.get("state") in MEMBER}


def staff_of(who: Principal, organisation: Mapping[str, Any], *roles: Role) -> bool:
    """Holds one of `roles` in a partnership the organisation is a member of (or programme-wide)."""
    return (programme_wide(who) and who.has(*roles)) or any(who.has_in(p, *roles) for p in member_of(organisation))


def acts_for(who: Principal, organisation: Mapping[str, Any]) -> bool:
    return is_party(who, organisation) or staff_of(who, organisation, Role.PROGRAMME_MANAGER)


def sees_contact(who: Principal, organisation: Mapping[str, Any], runs_its_exchange: bool = False) -> bool:
    """The contact person is personal data: for the organisation itself, the staff of the
    partnerships it is a member of, and the staff running an exchange it is a party of
    (`runs_its_exchange`, which the storage tells: see the module's docstring)."""
    return is_party(who, organisation) or staff_of(who, organisation, *STAFF) or runs_its_exchange


def viewers(who: Principal, application: Mapping[str, Any], my_organisations: Collection[str]) -> set[Viewer]:
    """As whom the caller sees an exchange: its visitor, its host, staff of its partnership."""
    found = set()
    if who.has(Role.VISITOR) and application["visitor_id"] in my_organisations:
        found.add(Viewer.VISITOR)
    if who.has(Role.HOST) and application["host_id"] in my_organisations:
        found.add(Viewer.HOST)
    if who.has_in(application["partnership_id"], *STAFF):
        found.add(Viewer.STAFF)
    return found


def sees_application(who: Principal, application: Mapping[str, Any], my_organisations: Collection[str]) -> bool:
    """A visitor sees its own exchanges, a host those addressed to it, staff their partnership's."""
    return bool(viewers(who, application, my_organisations))


def sees_partnership_contact(who: Principal, partnership_id: str) -> bool:
    """A partnership's contact e-mail: for its own staff and programme-wide managers."""
    return who.has_in(partnership_id, *STAFF)
