"""Who may see and act on what (pure).

A principal acts for an organisation when its token names that organisation or when it
enrolled it (its owner); a programme manager acts for the organisations taking part in his
partnerships (a programme-wide manager for all). An organisation takes part in a partnership
once it applied, as visitor or host, to one of its calls (its `partnership_ids`). Staff
(assessors, grant officers, programme managers) see the exchanges of their partnerships,
and the contact person of the organisations taking part in them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from cx_shared.auth import Principal
from cx_shared.vocabulary import Role

from applications.audience import Viewer

STAFF = (Role.ASSESSOR, Role.GRANT_OFFICER, Role.PROGRAMME_MANAGER)
TAKES_PART_IN = "partnership_ids"  # on an organisation: the partnerships it applied in


def programme_wide(who: Principal) -> bool:
    """A manager whose token carries the explicit programme-wide claim (never a missing one)."""
    return who.programme_wide


def is_party(who: Principal, organisation: Mapping[str, Any]) -> bool:
    """The organisation itself: its token, or the subject that enrolled it."""
    return (who.organisation_id == organisation["organisation_id"]
            or (organisation.get("owner") is not None and organisation.get("owner") == who.subject))


def staff_of(who: Principal, organisation: Mapping[str, Any], *roles: Role) -> bool:
    """Staff (in one of `roles`) of a partnership the organisation takes part in."""
    return who.has(*roles) and (programme_wide(who) or any(
        who.in_partnership(p) for p in organisation.get(TAKES_PART_IN) or ()))


def acts_for(who: Principal, organisation: Mapping[str, Any]) -> bool:
    return is_party(who, organisation) or staff_of(who, organisation, Role.PROGRAMME_MANAGER)


def sees_contact(who: Principal, organisation: Mapping[str, Any]) -> bool:
    """The contact person is personal data: for the organisation itself and the staff of
    the partnerships it takes part in."""
    return is_party(who, organisation) or staff_of(who, organisation, *STAFF)


def viewers(who: Principal, application: Mapping[str, Any], my_organisations: Collection[str]) -> set[Viewer]:
    """As whom the caller sees an exchange: its visitor, its host, staff of its partnership."""
    found = set()
    if who.has(Role.VISITOR) and application["visitor_id"] in my_organisations:
        found.add(Viewer.VISITOR)
    if who.has(Role.HOST) and application["host_id"] in my_organisations:
        found.add(Viewer.HOST)
    if who.has(*STAFF) and who.in_partnership(application["partnership_id"]):
        found.add(Viewer.STAFF)
    return found


def sees_application(who: Principal, application: Mapping[str, Any], my_organisations: Collection[str]) -> bool:
    """A visitor sees its own exchanges, a host those addressed to it, staff their partnership's."""
    return bool(viewers(who, application, my_organisations))
