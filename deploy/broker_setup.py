"""The broker's principals, topics and ACLs, for deploy/infra.sh and compose's kafka-setup.

  python deploy/broker_setup.py passwords   print a new random password per principal (KAFKA_PASSWORD_<NAME>=...)
  python deploy/broker_setup.py scram       print StorageTool's --add-scram arguments for those passwords
  python deploy/broker_setup.py apply       as the admin (KAFKA_* settings): create the product's topics and
                                            make the broker's ACLs exactly the table of cx_shared.broker_access
"""

import asyncio
import os
import secrets
import sys

from cx_shared.broker_access import apply
from cx_shared.kafka import ensure_topics, warn_about_retention
from cx_shared.settings import KafkaSettings, ServiceSettings
from cx_shared.topics import ALL_TOPICS, PRINCIPALS


def passwords() -> None:
    for principal in PRINCIPALS:
        print(f"KAFKA_PASSWORD_{principal.upper()}={secrets.token_urlsafe(24)}")


def scram() -> None:
    """One argument per line, for a java @argfile (kept off any process's command line)."""
    for principal in PRINCIPALS:
        password = os.environ[f"KAFKA_PASSWORD_{principal.upper()}"]
        print(f"--add-scram\nSCRAM-SHA-512=[name={principal},password={password}]")


async def setup() -> None:
    topics = ServiceSettings()  # TOPIC_PARTITIONS, TOPIC_REPLICATION, *_RETENTION_MS as the services read them
    admin = KafkaSettings()
    await ensure_topics(admin, "", topics.topic_partitions, topics.topic_replication,
                        retention_ms=topics.topic_retention_ms,
                        dead_letter_retention_ms=topics.dead_letter_retention_ms)
    # Topics made before (or by someone else) keep their configuration: say where it differs.
    await warn_about_retention(admin, [t.name for t in ALL_TOPICS], topics.topic_retention_ms,
                               topics.dead_letter_retention_ms)
    created, deleted = await apply(admin)
    print(f"[broker] topics ready; ACLs: {created} created, {deleted} removed", file=sys.stderr)


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "passwords":
        passwords()
    elif command == "scram":
        scram()
    elif command == "apply":
        asyncio.run(setup())
    else:
        sys.exit(__doc__)
