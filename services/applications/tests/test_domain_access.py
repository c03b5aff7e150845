"""Who may see and act on what (pure)."""

from cx_shared.auth import Principal
from cx_shared.vocabulary import Role
from applications import access

ORG = {"organisation_id": "org-v", "owner": "vera", "partnership_ids": ["ptn-1"]}  # it applied in ptn-1
APPLICATION = {"visitor_id": "org-v", "host_id": "org-h", "partnership_id": "ptn-1"}


def who(*roles, subject="someone", organisation_id=None, partnerships=(), programme=False):
    return Principal(subject=subject, roles=set(roles), organisation_id=organisation_id,
                     partnership_ids=list(partnerships), programme=programme)


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
                               {"organisation_id": "org-x", "owner": None})  # takes part nowhere yet
    assert not access.acts_for(who(Role.GRANT_OFFICER, Role.ASSESSOR, partnerships=["ptn-1"]), ORG)


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


def test_contact_details_are_for_the_organisation_and_the_staff_of_its_partnerships():
    assert access.sees_contact(who(Role.VISITOR, subject="vera"), ORG)
    assert access.sees_contact(who(Role.ASSESSOR, partnerships=["ptn-1"]), ORG)
    assert access.sees_contact(who(Role.GRANT_OFFICER, partnerships=["ptn-1"]), ORG)
    assert access.sees_contact(who(Role.PROGRAMME_MANAGER, programme=True), ORG)  # programme-wide
    assert not access.sees_contact(who(Role.ASSESSOR), ORG)  # staff of no partnership
    assert not access.sees_contact(who(Role.ASSESSOR, Role.PROGRAMME_MANAGER, partnerships=["ptn-2"]), ORG)
    assert not access.sees_contact(who(Role.HOST, subject="hans"), ORG)


def test_viewers_of_an_exchange():
    assert access.viewers(who(Role.VISITOR, Role.HOST), APPLICATION, {"org-v", "org-h"}) == {"visitor", "host"}
    assert access.viewers(who(Role.ASSESSOR, partnerships=["ptn-1"]), APPLICATION, set()) == {"staff"}
    assert access.viewers(who(Role.ASSESSOR, partnerships=["ptn-2"]), APPLICATION, set()) == set()
