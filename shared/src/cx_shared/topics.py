"""The product's Kafka topics: one table, versioned names, created at start-up.

Each service publishes to its own topic; the message key is the exchange (application)
id, so one exchange's events stay in order on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topic:
    name: str
    producer: str
    purpose: str


APPLICATIONS = Topic("cx.applications.v1", "applications", "enrolment, calls, offers, applications, exchange lifecycle")
ASSESSMENT = Topic("cx.assessment.v1", "assessment", "eligibility, scores, decisions, host acceptance")
GRANTS = Topic("cx.grants.v1", "grants", "budgets, commitments, agreements, payments")
NOTIFICATIONS = Topic("cx.notifications.v1", "notifications", "emails and webhook deliveries")
FINANCE = Topic("cx.finance.v1", "finance system", "payment confirmations from the partnership's finance system")
DEAD_LETTERS = Topic("cx.deadletter.v1", "every consumer", "poison messages, with the error in their headers")

ALL_TOPICS: tuple[Topic, ...] = (APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS, FINANCE, DEAD_LETTERS)


def qualified(topic: Topic | str, namespace: str = "") -> str:
    """The topic's name on the broker; a namespace isolates test runs sharing one broker."""
    name = topic.name if isinstance(topic, Topic) else topic
    return f"{namespace}{name}"
