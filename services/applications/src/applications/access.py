"""Who may see and act on what (pure). A principal acts for an organisation when its token
names that organisation or when it enrolled it; programme managers act for any. Staff
(assessors, grant officers, programme managers) see the exchanges of their partnerships."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from cx_shared.auth import Principal
from cx_shared.vocabulary import Role

STAFF = (Role.ASSESSOR, Role.GRANT_OFFICER, Role.PROGRAMME_MANAGER)


def acts_for(who: Principal, organisation: Mapping[str, Any]) -> bool:
    return (who.has(Role.PROGRAMME_MANAGER) or who.organisation_id == organisation["organisation_id"]
            or (organisation.get("owner") is not None and organisation.get("owner") == who.subject))


def sees_application(who: Principal, application: Mapping[str, Any], my_organisations: Collection[str]) -> bool:
    """A visitor sees its own exchanges, a host those addressed to it, staff their partnership's."""
    if who.has(Role.VISITOR) and application["visitor_id"] in my_organisations:
        return True
    if who.has(Role.HOST) and application["host_id"] in my_organisations:
        return True
    return who.has(*STAFF) and who.in_partnership(application["partnership_id"])


def sees_contact(who: Principal, organisation: Mapping[str, Any]) -> bool:
    """The contact person is personal data: for the organisation itself and programme staff."""
    return acts_for(who, organisation) or who.has(*STAFF)
