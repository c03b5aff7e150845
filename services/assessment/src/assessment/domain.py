"""The assessment of a call's applications, in plain Python (no I/O, no framework).

A ``CallBook`` is the aggregate: the call's versioned rule sets, its budget envelope
(the lump sums reserved by approvals, computed by the programme's one rule,
``cx_shared.lump_sums``, exactly as grants commits them; the waiting list's length, the next arrival
number) and the ``Entry`` of each application a decision needs. A book never has to hold
every entry: an admission needs its own and the visitor's, a round the ranked ones, a
promotion the waiting list (storage.py reads them by index and stores what changed).
Methods return the facts that happened (facts.py); contracts.py turns them into
integration events. Refusals of a person's request raise cx_shared.errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from cx_shared.errors import Conflict, Forbidden, Invalid, NotFound
from cx_shared.lump_sums import LumpSumError

from assessment.facts import (Appealed, Approved, Checked, Claimed, ConflictNoted, HostAcceptance, HostRefusal,
                              Queued, Rejected, RuleSetPublished, Scored, Waitlisted)
from assessment.rules import (Candidate, Context, Verdict, default_rules, evaluate, parameter_errors, unknown_rules,
                              with_call_facts)

__all__ = ["Appealed", "Approved", "Checked", "Claimed", "ConflictNoted", "HostAcceptance", "HostRefusal", "Queued",
           "Rejected", "RuleSetPublished", "Scored", "Waitlisted"]  # the facts, for the domain's readers

AUTOMATIC, PANEL = "automatic", "panel"

# Entry statuses
QUEUED, SCORED, APPEALED = "queued", "scored", "appealed"
APPROVED, WAITLISTED, REJECTED = "approved", "waitlisted", "rejected"
HOST_ACCEPTED, HOST_DECLINED = "host_accepted", "host_declined"
WITHDRAWN, RELEASED, CANCELLED = "withdrawn", "released", "cancelled"
CLOSED = {REJECTED, HOST_DECLINED, WITHDRAWN, RELEASED, CANCELLED}
HOLDS_PLACE = {APPROVED, HOST_ACCEPTED}
Exchange = tuple[str, date, date]  # (application id, planned start, planned end)

# Every version stays in the call's envelope (decisions keep the version they were taken
# under), so their number is bounded.
MAX_RULE_SET_VERSIONS = 50

DEFAULT_CRITERIA = {"relevance_to_purposes": 3, "expected_impact": 3, "quality_of_plan": 2,
                    "interregional_value": 2}
MAX_CRITERION_SCORE = 10


def weighted_score(weights: dict[str, int], scores: dict[str, int]) -> float:
    """Criterion scores 0..10 weighted into one score 0..100."""
    total = sum(weights.values())
    return round(sum(weights[c] * scores[c] for c in weights) * 100 / (total * MAX_CRITERION_SCORE), 2)


# --- state -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Assessor:
    """Staff acting on an application: the subject, the organisation the token names and the
    organisations the subject owns (enrolled), as applications published them."""

    subject: str
    organisation_id: str | None = None
    owns: frozenset[str] = frozenset()

    def party_to(self, entry: Entry) -> bool:
        """Owns or belongs to the visitor's or the host's organisation: a conflict of interest."""
        mine = self.owns | ({self.organisation_id} if self.organisation_id else set())
        return not mine.isdisjoint({entry.visitor_id, entry.host_id})


@dataclass
class Policy:
    """One version of a call's rules: eligibility rules and panel settings."""

    version: int
    name: str
    rules: list[dict[str, Any]]
    criteria: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_CRITERIA))
    second_assessor: bool = False
    score_gap: float = 20.0
    threshold: float = 60.0

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def offer_capacity(self, offer_id: str) -> int | None:
        """The places of a host offer when this version's rules limit them, else None."""
        limits = [(r.get("params") or {}).get("offer_capacities") or {}
                  for r in self.rules if r["rule"] == "host_capacity"]
        return next((int(places[offer_id]) for places in limits if offer_id in places), None)


@dataclass
class Entry:
    """One application as the call's assessment sees it."""

    application_id: str
    visitor_id: str
    host_id: str
    offer_id: str | None
    planned_start: date
    planned_end: date
    arrival: int
    lump_sum_cents: int  # reserved on approval: what grants commits for it
    rule_set_version: str
    eligible: bool
    outcomes: list[dict[str, Any]]
    status: str
    reasons: list[str] = field(default_factory=list)
    reserved_cents: int = 0
    claims: list[str] = field(default_factory=list)
    assessments: list[dict[str, Any]] = field(default_factory=list)
    conflicts: list[dict[str, str]] = field(default_factory=list)
    score: float | None = None
    appealed: bool = False
    host_accepted: bool = False
    spent_cents: int = 0  # ordered for payment by grants: stays reserved whatever happens next
    # When the applicant submitted it (UTC, fixed width, so it orders as text): its place in the
    # queue. ``arrival`` counts the order assessment consumed submissions in, which Kafka does
    # not keep across applications (partitions, a batch's keys at once, submissions kept until
    # their call arrives). "" for entries stored before it was kept: they came first anyway.
    submitted_at: str = ""

    def regular_assessments(self) -> list[dict[str, Any]]:
        return [a for a in self.assessments if not a["appeal"]]

    def assessors(self) -> set[str]:
        return {a["assessor"] for a in self.assessments}

    def queue_key(self) -> tuple[str, int]:
        """First come, first served: by submission, then by arrival (a tie, or none kept)."""
        return self.submitted_at, self.arrival

    def rank_key(self) -> tuple[float, str, int]:
        return (-(self.score or 0.0), *self.queue_key())

    def exchange(self) -> Exchange:
        return self.application_id, self.planned_start, self.planned_end

    def live_exchange(self) -> Exchange | None:
        """The dates of an application still heading for an exchange, else None."""
        return None if self.status in CLOSED else self.exchange()

    def place(self) -> Exchange | None:
        """The dates of the place it holds on its host offer (approved or accepted), else None."""
        return self.exchange() if self.status in HOLDS_PLACE else None


def submission_mark(at: datetime | None) -> str:
    """A submission's moment as fixed-width UTC text, ordered as it reads (Entry.submitted_at)."""
    if at is None:
        return ""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def more_binding(first: Entry, second: Entry) -> Entry:
    """Of two states of one application (stored, and being stored by a decision not yet
    settled), the one that takes more room: a place on a host offer, else a live exchange.
    An admission judges the visitor's and the offer's other applications by it, so two
    applications admitted at the same moment never both pass an overlap or capacity check."""
    def room(entry: Entry) -> int:
        return 2 if entry.status in HOLDS_PLACE else 0 if entry.status in CLOSED else 1
    return second if room(second) > room(first) else first


def _partiality(entry: Entry, who: Assessor) -> Forbidden | None:
    if who.party_to(entry):
        return Forbidden("conflict of interest: the assessor owns or belongs to the visitor's or the host's "
                         "organisation", field="assessor", rule="conflict_of_interest")
    return None


@dataclass
class CallBook:
    call_id: str
    partnership_id: str
    opens_on: date
    closes_on: date
    budget_cents: int
    mode: str
    envelope_left_cents: int
    policies: list[Policy]
    entries: dict[str, Entry] = field(default_factory=dict)  # the entries this decision needs
    next_arrival: int = 1
    waiting: int = 0  # waitlisted applications in the whole call, loaded or not
    lump_sum_rule_set: str = "default-v1"  # the call's lump-sum rules, the same grants commits by
    revision: int = 1  # the call's revision folded here (call.updated before the call opened)

    @classmethod
    def open(cls, call_id: str, partnership_id: str, opens_on: date, closes_on: date, budget_cents: int,
             mode: str, eligible_countries: list[str], rule_set_name: str,
             lump_sum_rule_set: str = "default-v1", exchanges_end_on: date | None = None,
             revision: int = 1) -> CallBook:
        mode = PANEL if mode == PANEL else AUTOMATIC
        first = Policy(1, rule_set_name, default_rules(eligible_countries, exchanges_end_on))
        return cls(call_id, partnership_id, opens_on, closes_on, budget_cents, mode, budget_cents, [first],
                   lump_sum_rule_set=lump_sum_rule_set, revision=revision)

    @property
    def policy(self) -> Policy:
        return self.policies[-1]

    def entry(self, application_id: str) -> Entry:
        if application_id not in self.entries:
            raise NotFound(f"application {application_id} is not in the assessment of call {self.call_id}")
        return self.entries[application_id]

    # --- rule sets ---------------------------------------------------------------------

    def change_rule_set(self, by: str, rules: list[dict[str, Any]] | None = None,
                        **panel: Any) -> list[RuleSetPublished]:
        """A new version; entries keep the version (and outcomes) they were checked under."""
        current = self.policy
        if len(self.policies) >= MAX_RULE_SET_VERSIONS:
            raise Conflict(f"call {self.call_id} already has {MAX_RULE_SET_VERSIONS} rule-set versions, the most "
                           "a call keeps", field="rules", rule="rule_set_versions")
        rules = current.rules if rules is None else rules
        if unknown := unknown_rules(rules):
            raise Invalid(f"unknown rule(s): {', '.join(unknown)}", field="rules", rule="known_rule")
        if wrong := parameter_errors(rules):
            raise Invalid("; ".join(why for _, why in wrong), rule="rule_parameter",
                          errors=[{"field": f, "rule": "rule_parameter", "message": why} for f, why in wrong])
        settings = {k: v for k, v in panel.items() if v is not None}
        criteria = settings.get("criteria", current.criteria)
        if not criteria or any(w <= 0 for w in criteria.values()):
            raise Invalid("criteria need at least one criterion, each with a positive weight", field="criteria")
        new = Policy(current.version + 1, current.name, [dict(r) for r in rules], dict(criteria),
                     settings.get("second_assessor", current.second_assessor),
                     float(settings.get("score_gap", current.score_gap)),
                     float(settings.get("threshold", current.threshold)))
        self.policies.append(new)
        return [RuleSetPublished(new.label, new.rules, by, dict(new.criteria), new.second_assessor, new.score_gap,
                                 new.threshold)]

    # --- the call changed before it opened ----------------------------------------------

    def call_changed(self, revision: int, opens_on: date, closes_on: date, budget_change_cents: int,
                     eligible_countries: list[str], exchanges_end_on: date | None, by: str) -> list[Any]:
        """The call's new dates and budget; its countries and last exchange day in a new rule-set
        version (the rules a manager set otherwise stay). Once per revision, in order. Nobody
        could apply before the call opened, so no reservation stands against the old budget."""
        if revision <= self.revision:
            return []  # redelivered, or older than what is folded
        self.revision, self.opens_on, self.closes_on = revision, opens_on, closes_on
        self.budget_cents += budget_change_cents
        self.envelope_left_cents += budget_change_cents
        rules = with_call_facts(self.policy.rules, eligible_countries, exchanges_end_on)
        facts = self.change_rule_set(by, rules) if rules != self.policy.rules else []
        return facts + self._promote()

    # --- eligibility and the first decision --------------------------------------------

    def admit(self, candidate: Candidate, lump_sum: int | LumpSumError, elsewhere: tuple[Exchange, ...] = (),
              offer_elsewhere: tuple[Exchange, ...] = ()) -> list[Any]:
        """Check eligibility and take the first decision. ``lump_sum``: the exchange's lump sum
        by the call's rules (cents), or why none can be computed (grants could not fund it).
        ``elsewhere``: the visitor's live exchanges in other calls (id, start, end), for the overlap rule;
        ``offer_elsewhere``: the places held on the candidate's offer in other calls, for host_capacity."""
        if candidate.application_id in self.entries:
            return []  # already assessed: a duplicate submission changes nothing
        policy = self.policy
        verdict = Verdict(evaluate(policy.rules, candidate, self._context(candidate, elsewhere, offer_elsewhere)))
        outcomes = [{"rule": o.rule, "passed": o.passed, "reason": o.reason} for o in verdict.outcomes]
        failures = list(verdict.failures)
        if verdict.eligible and isinstance(lump_sum, LumpSumError):  # no amount to reserve or commit: unfundable
            outcomes.append({"rule": "lump_sum", "passed": False, "reason": f"no lump sum by rule: {lump_sum}"})
            failures.append(outcomes[-1]["reason"])
        eligible = not failures
        entry = Entry(candidate.application_id, candidate.visitor.organisation_id, candidate.host.organisation_id,
                      candidate.offer_id, candidate.planned_start, candidate.planned_end, self.next_arrival,
                      0 if isinstance(lump_sum, LumpSumError) else lump_sum, policy.label, eligible, outcomes, QUEUED,
                      submitted_at=submission_mark(candidate.submitted_at))
        self.next_arrival += 1
        self.entries[entry.application_id] = entry
        facts: list[Any] = [Checked(entry.application_id, eligible, policy.label, outcomes)]
        if not eligible:
            facts.append(self._reject(entry, failures))
        elif self.mode == PANEL:
            facts.append(Queued(entry.application_id, self.partnership_id, self._required(entry)))
        elif not self.waiting and self._fits(entry):
            facts.append(self._approve(entry, ["eligible; approved in order of arrival within the envelope"]))
        else:
            facts.append(self._put_on_waitlist(entry, [self._no_room(entry)]))
        return facts

    def _context(self, c: Candidate, elsewhere: tuple[Exchange, ...],
                 offer_elsewhere: tuple[Exchange, ...]) -> Context:
        live = tuple(e.exchange() for e in self.entries.values()
                     if e.visitor_id == c.visitor.organisation_id and e.status not in CLOSED)
        places = tuple(e.exchange() for e in self.entries.values()
                       if c.offer_id and e.offer_id == c.offer_id and e.status in HOLDS_PLACE)
        return Context(self.opens_on, self.closes_on, live + elsewhere, places + offer_elsewhere)

    # --- panel: claim, conflicts, scores -----------------------------------------------

    def queue_for(self, assessor: Assessor) -> list[Entry]:
        """What this assessor may claim, first come first served."""
        open_ = [e for e in self.entries.values() if e.status in (QUEUED, APPEALED) and self._open_places(e) > 0]
        return sorted((e for e in open_ if self._obstacle(e, assessor) is None), key=Entry.queue_key)

    def claim(self, application_id: str, assessor: Assessor) -> list[Any]:
        entry = self.entry(application_id)
        if entry.status not in (QUEUED, APPEALED):
            raise Conflict(f"application {application_id} is {entry.status}, not awaiting assessment")
        if assessor.subject in entry.claims:
            return []  # claiming twice is harmless
        if obstacle := self._obstacle(entry, assessor):
            raise obstacle
        if self._open_places(entry) <= 0:
            raise Conflict(f"application {application_id} already has the assessors it needs")
        entry.claims.append(assessor.subject)
        return [Claimed(application_id, assessor.subject, entry.status == APPEALED)]

    def _obstacle(self, entry: Entry, assessor: Assessor) -> Exception | None:
        if partial := _partiality(entry, assessor):
            return partial
        if any(c["assessor"] == assessor.subject for c in entry.conflicts):
            return Forbidden("conflict of interest declared by this assessor", rule="declared_conflict",
                             field="assessor")
        if assessor.subject in entry.assessors():
            rule = "appeal_different_assessor" if entry.status == APPEALED else "one_score_per_assessor"
            why = ("an appeal is re-assessed by a different assessor" if entry.status == APPEALED
                   else "this assessor has already scored the application")
            return Conflict(why, field="assessor", rule=rule)
        return None

    def declare_conflict(self, application_id: str, assessor: Assessor, reason: str) -> list[Any]:
        entry = self.entry(application_id)
        if not reason.strip():
            raise Invalid("a declared conflict needs a reason", field="reason", rule="required")
        if any(c["assessor"] == assessor.subject for c in entry.conflicts):
            return []
        entry.conflicts.append({"assessor": assessor.subject, "reason": reason})
        if assessor.subject in entry.claims:
            entry.claims.remove(assessor.subject)  # the place goes back to the queue
        return [ConflictNoted(application_id, assessor.subject, reason)]

    def score(self, application_id: str, assessor: Assessor, criteria: dict[str, int], comment: str) -> list[Any]:
        entry = self.entry(application_id)
        if entry.status not in (QUEUED, APPEALED):
            raise Conflict(f"application {application_id} is {entry.status}, not awaiting assessment")
        if assessor.subject not in entry.claims:
            raise Conflict("claim the application before scoring it", field="assessor", rule="claimed")
        if partial := _partiality(entry, assessor):  # became an owner since the claim
            raise partial
        weights = self.policy.criteria
        if set(criteria) != set(weights):
            raise Invalid(f"score exactly these criteria: {', '.join(sorted(weights))}", field="scores",
                          rule="criteria")
        if any(not 0 <= v <= MAX_CRITERION_SCORE for v in criteria.values()):
            raise Invalid(f"each criterion is scored 0 to {MAX_CRITERION_SCORE}", field="scores", rule="range")
        appeal = entry.status == APPEALED
        value = weighted_score(weights, criteria)
        entry.claims.remove(assessor.subject)
        entry.assessments.append({"assessor": assessor.subject, "score": value, "criteria": dict(criteria),
                                  "comment": comment, "appeal": appeal})
        decisions: list[Any] = []
        final = None
        if appeal:
            final = entry.score = value
            decisions = self._decide_appeal(entry)
        elif len(entry.regular_assessments()) >= self._required(entry):
            scores = [a["score"] for a in entry.regular_assessments()]
            final = entry.score = round(sum(scores) / len(scores), 2)
            self._move(entry, SCORED)
        return [Scored(application_id, assessor.subject, value, dict(criteria), comment, appeal, final), *decisions]

    def _required(self, entry: Entry) -> int:
        """Assessors needed: one, two when the call says so, one more when scores differ
        by more than the call's gap."""
        policy = self.policy
        base = 2 if policy.second_assessor else 1
        scores = [a["score"] for a in entry.regular_assessments()][:base]
        if len(scores) >= 2 and max(scores) - min(scores) > policy.score_gap:
            return base + 1
        return base

    def _open_places(self, entry: Entry) -> int:
        if entry.status == APPEALED:
            done = len(entry.assessments) - len(entry.regular_assessments())
            return 1 - done - len(entry.claims)
        return self._required(entry) - len(entry.regular_assessments()) - len(entry.claims)

    # --- rounds --------------------------------------------------------------------------

    def run_round(self) -> list[Any]:
        """Rank by score; approve down the ranking while the envelope allows; waitlist
        the rest above the threshold; reject below it."""
        if self.mode != PANEL:
            raise Conflict("rounds are for panel calls; automatic calls decide on arrival")
        threshold = self.policy.threshold
        ranked = sorted((e for e in self.entries.values() if e.status in (SCORED, WAITLISTED)),
                        key=Entry.rank_key)
        facts: list[Any] = []
        approving = True
        for rank, entry in enumerate(ranked, start=1):
            where = f"ranked {rank} of {len(ranked)} with score {entry.score}"
            if entry.score is None or entry.score < threshold:
                facts.append(self._reject(entry, [f"{where}: below the call's threshold {threshold}"]))
            elif approving and self._fits(entry):
                facts.append(self._approve(entry, [f"{where}: within the envelope"]))
            else:
                approving = False  # strict ranking: nobody lower jumps a waitlisted application
                if entry.status != WAITLISTED:
                    facts.append(self._put_on_waitlist(entry, [f"{where}: {self._no_room(entry)}"]))
        return facts

    # --- the host builds the exchange -----------------------------------------------------

    def host_decides(self, application_id: str, host_organisation_id: str | None, accept: bool,
                     reason: str = "") -> list[Any]:
        entry = self.entry(application_id)
        if host_organisation_id != entry.host_id:
            raise Forbidden("only the host organisation of this application can answer it",
                            field="organisation_id", rule="host_organisation")
        if entry.status == HOST_ACCEPTED and accept or entry.status == HOST_DECLINED and not accept:
            return []  # the same answer again: already recorded
        if entry.status != APPROVED:
            raise Conflict(f"application {application_id} is {entry.status}; a host answers approved applications")
        if accept:
            self._move(entry, HOST_ACCEPTED)
            entry.host_accepted = True
            return [HostAcceptance(application_id, entry.host_id)]
        if not reason.strip():
            raise Invalid("a host declining must give a reason", field="reason", rule="required")
        self._release(entry)
        self._move(entry, HOST_DECLINED, [f"host declined: {reason}"])
        return [HostRefusal(application_id, entry.host_id, reason), *self._promote()]

    # --- money moves in grants -------------------------------------------------------------

    def commitment_released(self, application_id: str, reason: str, released_cents: int | None = None) -> list[Any]:
        """A withdrawal or cancellation freed money: the first waitlisted move up. Only what
        grants released comes back (None: all); money already ordered for payment stays spent."""
        entry = self.entries.get(application_id)
        if entry is not None and entry.status in HOLDS_PLACE:
            back = entry.reserved_cents if released_cents is None else min(released_cents, entry.reserved_cents)
            entry.reserved_cents -= back
            self.envelope_left_cents += back
            self._move(entry, RELEASED, [f"commitment released: {reason}"])
        return self._promote()

    def payment_ordered(self, application_id: str, amount_cents: int) -> list[Any]:
        """Grants ordered a payment of the exchange: that money is spent, whatever happens next
        (a withdrawal or cancellation after it frees only the rest, as grants releases only the rest).
        An order that arrives after the entry closed takes back what the closing freed."""
        entry = self.entries.get(application_id)
        if entry is None:
            return []
        entry.spent_cents += amount_cents
        short = entry.spent_cents - entry.reserved_cents
        if short > 0:
            entry.reserved_cents += short
            self.envelope_left_cents -= short
        return []

    def grant_refused(self, application_id: str, reason: str) -> list[Any]:
        """Grants could not commit: the application waits for released money."""
        entry = self.entries.get(application_id)
        if entry is None or entry.status not in HOLDS_PLACE:
            return []
        self._release(entry)
        return [self._put_on_waitlist(entry, [f"grant refused: {reason}"])]

    def withdrawn(self, application_id: str, status: str = WITHDRAWN) -> list[Any]:
        """The visitor withdrew (or, ``CANCELLED``, the programme cancelled) the application:
        its reservation goes back to the envelope and the waitlist moves."""
        entry = self.entries.get(application_id)
        if entry is None or entry.status in CLOSED:
            return []
        self._release(entry)
        self._move(entry, status)
        entry.claims = []
        return self._promote()

    def cancelled(self, application_id: str) -> list[Any]:
        return self.withdrawn(application_id, CANCELLED)

    def topped_up(self, amount_cents: int) -> list[Any]:
        """Grants added money to the call's budget: the envelope grows and the waitlist moves."""
        self.budget_cents += amount_cents
        self.envelope_left_cents += amount_cents
        return self._promote()

    def commitment_reduced(self, application_id: str, released_cents: int) -> list[Any]:
        """A shorter exchange earned less: grants returned part of its commitment, so the same
        part of its reservation goes back to the envelope, and the waitlist moves."""
        entry = self.entries.get(application_id)
        if entry is None or entry.status not in HOLDS_PLACE:
            return []
        back = min(released_cents, entry.reserved_cents)
        entry.reserved_cents -= back
        self.envelope_left_cents += back
        return self._promote()

    # --- appeal and override ----------------------------------------------------------------

    def appeal(self, application_id: str, visitor_organisation_id: str | None, reason: str) -> list[Any]:
        entry = self.entry(application_id)
        if visitor_organisation_id != entry.visitor_id:
            raise Forbidden("only the visitor of this application can appeal", field="organisation_id")
        if entry.appealed:
            raise Conflict("an applicant may appeal once", rule="appeal_once")
        if entry.status != REJECTED:
            raise Conflict(f"application {application_id} is {entry.status}; only a rejection can be appealed")
        if not reason.strip():
            raise Invalid("an appeal needs a reason", field="reason", rule="required")
        entry.appealed = True
        self._move(entry, APPEALED)
        return [Appealed(application_id, reason)]

    def _decide_appeal(self, entry: Entry) -> list[Any]:
        threshold = self.policy.threshold
        where = f"appeal re-assessed with score {entry.score}"
        if entry.score is None or entry.score < threshold:
            return [self._reject(entry, [f"{where}: below the call's threshold {threshold}"])]
        if not self.waiting and self._fits(entry):
            return [self._approve(entry, [f"{where}: upheld, within the envelope"])]
        return [self._put_on_waitlist(entry, [f"{where}: upheld; {self._no_room(entry)}"])]

    def override(self, application_id: str, decision: str, justification: str, by: Assessor) -> list[Any]:
        if not justification.strip():
            raise Invalid("an override needs a justification", field="justification", rule="required")
        entry = self.entry(application_id)
        if partial := _partiality(entry, by):
            raise partial
        if entry.status in {HOST_ACCEPTED, HOST_DECLINED, WITHDRAWN, RELEASED, CANCELLED}:
            raise Conflict(f"application {application_id} is {entry.status}; its decision can no longer change")
        why = dict(overridden_by=by.subject, justification=justification)
        reasons = [f"decision overridden by {by.subject}: {justification}"]
        if decision == APPROVED:
            if not entry.reserved_cents and not self._fits(entry):
                raise Conflict(self._no_room(entry), rule="envelope")
            return [self._approve(entry, reasons, **why)]
        if decision not in (WAITLISTED, REJECTED):
            raise Invalid("decision is one of approved, waitlisted, rejected", field="decision")
        freed = entry.reserved_cents > 0
        self._release(entry)
        fact = (self._put_on_waitlist if decision == WAITLISTED else self._reject)(entry, reasons, **why)
        return [fact, *(self._promote() if freed else [])]

    # --- the envelope -------------------------------------------------------------------------

    def _fits(self, entry: Entry) -> bool:
        return entry.lump_sum_cents <= self.envelope_left_cents

    def _no_room(self, entry: Entry) -> str:
        return (f"the envelope left ({self.envelope_left_cents} cents) does not cover the "
                f"lump sum ({entry.lump_sum_cents} cents), or earlier applications are waiting")

    def _waitlist(self) -> list[Entry]:
        """The loaded waitlisted entries, in ranking order (a promotion loads them all)."""
        return sorted((e for e in self.entries.values() if e.status == WAITLISTED), key=Entry.rank_key)

    def _approve(self, entry: Entry, reasons: list[str], **why: Any) -> Approved:
        if not entry.reserved_cents:
            entry.reserved_cents = entry.lump_sum_cents
            self.envelope_left_cents -= entry.lump_sum_cents
        self._move(entry, APPROVED, reasons)
        return Approved(entry.application_id, reasons, entry.score, estimated_cents=entry.lump_sum_cents, **why)

    def _put_on_waitlist(self, entry: Entry, reasons: list[str], **why: Any) -> Waitlisted:
        self._move(entry, WAITLISTED, reasons)
        return Waitlisted(entry.application_id, reasons, entry.score, **why)

    def _reject(self, entry: Entry, reasons: list[str], **why: Any) -> Rejected:
        self._move(entry, REJECTED, reasons)
        return Rejected(entry.application_id, reasons, entry.score, **why)

    def _move(self, entry: Entry, status: str, reasons: list[str] | None = None) -> None:
        """The one way an entry changes status: it keeps the call's waiting count, and a
        decision (with its reasons) ends any claim on the entry."""
        self.waiting += (status == WAITLISTED) - (entry.status == WAITLISTED)
        entry.status = status
        if reasons is not None:
            entry.reasons, entry.claims = reasons, []

    def _release(self, entry: Entry) -> None:
        """The reservation goes back to the envelope, but for what grants ordered for payment."""
        back = max(0, entry.reserved_cents - entry.spent_cents)
        self.envelope_left_cents += back
        entry.reserved_cents -= back

    def _promote(self) -> list[Any]:
        """Approve waitlisted applications in order while the envelope allows. One whose
        host had already accepted (its grant was refused) keeps that acceptance."""
        facts: list[Any] = []
        for entry in self._waitlist():
            if not self._fits(entry):
                break
            facts.append(self._approve(entry, ["promoted from the waitlist: money was released"]))
            if entry.host_accepted:
                self._move(entry, HOST_ACCEPTED)
                facts.append(HostAcceptance(entry.application_id, entry.host_id))
        return facts
