"""Who may see and act on what (pure)."""

from cx_shared.auth import Principal
from cx_shared.vocabulary import Role
from applications import access

JOINED = {"state": "joined", "since": "2026-12-01T09:00:00+00:00", "by": "vera"}
ORG = {"organisation_id": "org-v", "owner": "vera", "memberships": {"ptn-1": JOINED}}  # it joined ptn-1
APPLICATION = {"visitor_id": "org-v", "host_id": "org-h", "partnership_id": "ptn-1"}
STAFF_ROLES = {Role.ASSESSOR, Role.GRANT_OFFICER, Role.PROGRAMME_MANAGER}


def who(*roles, subject="someone", organisation_id=None, partnerships=(), programme=False, partnership_roles=None):
    """A principal as a token makes it: its staff roles in each of `partnerships` (or as given)."""
    staff = set(roles) & STAFF_ROLES
    held = partnership_roles if partnership_roles is not None else {p: staff for p in partnerships if staff}
    return Principal(subject=subject, roles=set(roles), organisation_id=organisation_id, partnership_roles=held,
                     programme=programme)


def test_the_owner_the_organisation_and_managers_of_its_partnerships_act_for_it():
    assert access.acts_for(who(Role.VISITOR, subject="vera"), ORG)
    assert access.acts_for(who(Role.VISITOR, organisation_id="org-v"), ORG)
    assert access.acts_for(who(Role.PROGRAMME_MANAGER, partnerships=["ptn-2", "ptn-1"]), ORG)
    assert access.acts_for(who(Role.PROGRAMME_MANAGER, programme=True), ORG)  # programme-wide
    assert access.acts_for(who(Role.PROGRAMME_MANAGER, programme=True), {"organisation_id": "org-x", "owner": None})
    assert not access.acts_for(who(Role.PROGRAMME_MANAGER), ORG)  # no partnerships claim: nothing
    assert not access.acts_for(who(Role.VISITOR, subject="mallory"), ORG)
    assert not access.acts_for(who(Role.VISITOR), {"organisation_id": "org-x", "owner": None})


def test_a_manager_of_another_partnership_or_other_staff_do_not_act_for_it():
    assert not access.acts_for(who(Role.PROGRAMME_MANAGER, partnerships=["ptn-2"]), ORG)
    assert not access.acts_for(who(Role.PROGRAMME_MANAGER, partnerships=["ptn-1"]),
                               {"organisation_id": "org-x", "owner": None})  # a member of nothing
    assert not access.acts_for(who(Role.GRANT_OFFICER, Role.ASSESSOR, partnerships=["ptn-1"]), ORG)


def test_applying_in_a_partnership_or_the_old_links_make_no_member():
    """Issue 23: the partnership_ids an application added (the host never agreed) give nothing,
    and neither does a membership in a state that is not a member's."""
    applied = {"organisation_id": "org-h", "owner": "hans", "partnership_ids": ["ptn-1"]}
    asked = {"organisation_id": "org-h", "owner": "hans", "memberships": {"ptn-1": {**JOINED, "state": "requested"}}}
    manager = who(Role.PROGRAMME_MANAGER, partnerships=["ptn-1"])
    for organisation in (applied, asked):
        assert access.member_of(organisation) == set()
        assert not access.acts_for(manager, organisation)
        assert not access.sees_contact(who(Role.ASSESSOR, partnerships=["ptn-1"]), organisation)
    assert access.member_of(ORG) == {"ptn-1"}


def test_a_role_counts_only_in_the_partnership_that_holds_it():
    """An assessor of ptn-1 who manages ptn-2 is no manager in ptn-1 (issue 23, finding 4)."""
    mixed = who(Role.ASSESSOR, Role.PROGRAMME_MANAGER,
                partnership_roles={"ptn-1": {Role.ASSESSOR}, "ptn-2": {Role.PROGRAMME_MANAGER}})
    assert not access.acts_for(mixed, ORG)
    assert access.sees_contact(mixed, ORG)  # as the assessor of a partnership it is a member of
    assert access.viewers(mixed, APPLICATION, set()) == {"staff"}
    assert access.acts_for(mixed, {**ORG, "memberships": {"ptn-2": JOINED}})


def test_the_visitor_its_host_and_the_partnership_see_an_application():
    assert access.sees_application(who(Role.VISITOR), APPLICATION, {"org-v"})
    assert access.sees_application(who(Role.HOST), APPLICATION, {"org-h"})
    assert access.sees_application(who(Role.ASSESSOR, partnerships=["ptn-1"]), APPLICATION, set())
    assert access.sees_application(who(Role.PROGRAMME_MANAGER, programme=True), APPLICATION, set())


def test_nobody_else_does():
    assert not access.sees_application(who(Role.VISITOR), APPLICATION, {"org-h"})  # a visitor role, the host's org
    assert not access.sees_application(who(Role.HOST), APPLICATION, {"org-v"})
    assert not access.sees_application(who(Role.ASSESSOR, partnerships=["ptn-2"]), APPLICATION, set())
    assert not access.sees_application(who(Role.GRANT_OFFICER), APPLICATION, set())
    assert not access.sees_application(who(Role.PROGRAMME_MANAGER, partnerships=["ptn-2"]), APPLICATION, set())
    # a missing partnerships claim grants nothing: programme-wide is an explicit claim
    assert not access.sees_application(who(Role.PROGRAMME_MANAGER), APPLICATION, set())


def test_contact_details_are_for_the_organisation_the_staff_of_its_partnerships_and_of_its_exchanges():
    assert access.sees_contact(who(Role.VISITOR, subject="vera"), ORG)
    assert access.sees_contact(who(Role.ASSESSOR, partnerships=["ptn-1"]), ORG)
    assert access.sees_contact(who(Role.GRANT_OFFICER, partnerships=["ptn-1"]), ORG)
    assert access.sees_contact(who(Role.PROGRAMME_MANAGER, programme=True), ORG)  # programme-wide
    assert not access.sees_contact(who(Role.ASSESSOR), ORG)  # staff of no partnership
    assert not access.sees_contact(who(Role.ASSESSOR, Role.PROGRAMME_MANAGER, partnerships=["ptn-2"]), ORG)
    assert not access.sees_contact(who(Role.HOST, subject="hans"), ORG)
    # staff running an exchange it is a party of (the storage tells which)
    assert access.sees_contact(who(Role.ASSESSOR, partnerships=["ptn-2"]), ORG, runs_its_exchange=True)


def test_a_partnerships_contact_email_is_for_its_staff_and_programme_wide_managers():
    assert access.sees_partnership_contact(who(Role.ASSESSOR, partnerships=["ptn-1"]), "ptn-1")
    assert access.sees_partnership_contact(who(Role.PROGRAMME_MANAGER, programme=True), "ptn-1")
    assert not access.sees_partnership_contact(who(Role.PROGRAMME_MANAGER, partnerships=["ptn-2"]), "ptn-1")
    assert not access.sees_partnership_contact(who(Role.VISITOR, subject="vera"), "ptn-1")


def test_viewers_of_an_exchange():
    assert access.viewers(who(Role.VISITOR, Role.HOST), APPLICATION, {"org-v", "org-h"}) == {"visitor", "host"}
    assert access.viewers(who(Role.ASSESSOR, partnerships=["ptn-1"]), APPLICATION, set()) == {"staff"}
    assert access.viewers(who(Role.ASSESSOR, partnerships=["ptn-2"]), APPLICATION, set()) == set()
