"""The product's Kafka topics: one table, versioned names, created by the admin at deployment.

Each service publishes to its own topic; the message key is the exchange (application)
id, so one exchange's events stay in order on one partition. The table also says who may
write each topic (the broker's ACLs) and which CloudEvents sources its events may carry
(the consumers' check): a record is believed only if both match.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICES = ("applications", "assessment", "grants", "notifications")
FINANCE_SYSTEM = "finance"  # the partnership's finance system: confirms payments
SUBSCRIBER = "subscriber"  # outside systems that only read (a CRM, EU monitoring...)
ADMIN = "admin"  # the broker's super user: creates topics and ACLs, never used by a service
PRINCIPALS = (ADMIN, *SERVICES, FINANCE_SYSTEM, SUBSCRIBER)  # the broker's users, one password each
# The source the finance system stamps on its events: it is the partnership's, not ours.
FINANCE_SOURCE = "/partnership/finance"


def service_source(service: str) -> str:
    """The CloudEvents source of everything a service emits."""
    return f"/clusterxchange/{service}"


@dataclass(frozen=True)
class Topic:
    name: str
    producer: str  # the one principal allowed to write it
    purpose: str
    sources: tuple[str, ...] = ()  # the ce_source values its events may carry
    readers: tuple[str, ...] = ()  # the services that consume it (their ACLs; a test checks their handlers)


def _service_topic(service: str, purpose: str, readers: tuple[str, ...]) -> Topic:
    return Topic(f"cx.{service}.v1", service, purpose, (service_source(service),), readers)


APPLICATIONS = _service_topic("applications", "enrolment, calls, offers, applications, exchange lifecycle", SERVICES)
ASSESSMENT = _service_topic("assessment", "eligibility, scores, decisions, host acceptance",
                            ("applications", "grants", "notifications"))
GRANTS = _service_topic("grants", "budgets, commitments, agreements, payments",
                        ("applications", "assessment", "notifications"))
NOTIFICATIONS = _service_topic("notifications", "emails and webhook deliveries", ("applications", "notifications"))
FINANCE = Topic("cx.finance.v1", FINANCE_SYSTEM, "payment confirmations from the partnership's finance system",
                (FINANCE_SOURCE,), ("applications", "grants", "notifications"))
DEAD_LETTERS = Topic("cx.deadletter.v1", "every consumer", "poison messages, with the error in their headers")
# Each data subject's key (crypto-shredding, cx_shared.personal_data.keys): made by applications, read
# only by the services (they open personal data, or seal their part of an export); no outside reader.
# Compacted: the latest value per subject, and an erasure's tombstone removes the key from the log
# (see KEYS_CONFIGS).
KEYS = Topic("cx.personal_data_keys.v1", "applications", "the data key of each subject (compacted)", (), SERVICES)

ALL_TOPICS: tuple[Topic, ...] = (APPLICATIONS, ASSESSMENT, GRANTS, NOTIFICATIONS, FINANCE, DEAD_LETTERS, KEYS)
PRODUCT_TOPICS: tuple[Topic, ...] = tuple(t for t in ALL_TOPICS if t not in (DEAD_LETTERS, KEYS))
EVENT_TOPICS: tuple[Topic, ...] = tuple(t for t in ALL_TOPICS if t is not KEYS)  # CloudEvents (the catalog's)


# Retention: every topic keeps its events without time limit by default (TOPIC_RETENTION_MS=-1),
# so that a service's read model can be rebuilt, or a new subscriber catch up, from the first event.
UNLIMITED = -1
# Dead letters are copies of events (personal data included) kept to be looked at and replayed by
# hand, not for ever: DEAD_LETTER_RETENTION_MS, 30 days unless configured otherwise.
DEAD_LETTER_RETENTION_MS = 30 * 24 * 3600 * 1000


def retention_of(name: str, retention_ms: int, dead_letter_retention_ms: int) -> int:
    """How long the topic ``name`` (namespaced or not) keeps its records."""
    return dead_letter_retention_ms if name.startswith(DEAD_LETTERS.name) else retention_ms


def retention_configs(retention_ms: int = UNLIMITED) -> dict[str, str]:
    """The topic configuration a topic is created with, and that a service expects to find:
    events are deleted only after retention_ms (never with -1), never for size, never compacted
    (a compacted topic keeps only the last event of each exchange)."""
    return {"retention.ms": str(retention_ms), "retention.bytes": str(UNLIMITED), "cleanup.policy": "delete"}


# The keys topic is compacted, never deleted by age: a subject's key lives until its erasure. The
# cleaner compacts a partition as soon as 1 % of it is superseded (min.cleanable.dirty.ratio), a
# segment rolls at least hourly (segment.ms) and no superseded value waits more than an hour to be
# cleaned (max.compaction.lag.ms): an erased key is gone from the log within about two hours, and
# its tombstone a day later (delete.retention.ms), once every reader has seen it.
KEYS_CONFIGS = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01", "segment.ms": "3600000",
                "max.compaction.lag.ms": "3600000", "delete.retention.ms": "86400000",
                "retention.ms": str(UNLIMITED), "retention.bytes": str(UNLIMITED)}


def topic_configs(topic: Topic | str, retention_ms: int = UNLIMITED,
                  dead_letter_retention_ms: int = DEAD_LETTER_RETENTION_MS) -> dict[str, str]:
    """What a topic is created with, and what a service expects to find: the keys topic compacted,
    dead letters kept dead_letter_retention_ms, every other one kept by retention_ms."""
    name = topic.name if isinstance(topic, Topic) else topic
    if name.startswith(KEYS.name):
        return dict(KEYS_CONFIGS)
    return retention_configs(retention_of(name, retention_ms, dead_letter_retention_ms))


def retention_setting(name: str) -> str:
    """The setting that says how long the topic ``name`` keeps its records."""
    if name.startswith(KEYS.name):
        return "cx_shared.topics.KEYS_CONFIGS"
    return "DEAD_LETTER_RETENTION_MS" if name.startswith(DEAD_LETTERS.name) else "TOPIC_RETENTION_MS"


def retention_differences(wanted: dict[str, str], found: dict[str, str]) -> dict[str, str]:
    """What the broker has (name -> value) where it differs from what is wanted."""
    return {name: found.get(name, "unknown") for name, value in wanted.items() if found.get(name) != value}


def qualified(topic: Topic | str, namespace: str = "") -> str:
    """The topic's name on the broker. A namespace (test runs sharing one broker) is a suffix,
    `cx.applications.v1.t1a2b`, so the ACLs on the prefix `cx.applications.v1.` cover it."""
    name = topic.name if isinstance(topic, Topic) else topic
    return _suffixed(name, namespace)


def consumer_group(service: str, namespace: str = "") -> str:
    """A service's consumer group, `applications` or `applications.t1a2b` in a namespace."""
    return _suffixed(service, namespace)


def _suffixed(name: str, namespace: str) -> str:
    token = namespace.strip(".")  # "t1a2b" and the older "t1a2b." name the same namespace
    return f"{name}.{token}" if token else name
