"""Who may do what on the broker: the ACL table, derived from the topics table, and the
means to make the broker's ACLs exactly that (run by the admin at deployment).

Each grant covers the production name (`cx.grants.v1`, group `grants`) and every test
namespace under it (`cx.grants.v1.t1a2b`, group `grants.t1a2b`), as a LITERAL and a
PREFIXED ACL. The admin is a super user and has no ACLs; any other principal, anonymous
included, is refused whatever the table does not grant.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest

from cx_shared.kafka import admin_client
from cx_shared.settings import KafkaSettings
from cx_shared.topics import (ALL_TOPICS, DEAD_LETTERS, FINANCE, FINANCE_SYSTEM, GRANTS, PRODUCT_TOPICS, SERVICES,
                              SUBSCRIBER)

# Kafka's wire codes (org.apache.kafka.common.acl / resource)
RESOURCE = {"topic": 2, "group": 3}
OPERATION = {"READ": 3, "WRITE": 4, "DESCRIBE_CONFIGS": 10}
ANY, LITERAL, PREFIXED, ALLOW = 1, 3, 4, 3


@dataclass(frozen=True, order=True)
class Grant:
    principal: str
    operation: str  # READ or WRITE (each implies DESCRIBE), or DESCRIBE_CONFIGS
    resource: str  # topic or group
    name: str


def grants() -> list[Grant]:
    """The whole table: each service writes its own topic and the dead letters, reads what it
    consumes and its own topic (its rebuild replays what its HTTP requests made from it), in its
    own group, and reads the configuration of those topics (it checks their retention at
    start-up); the finance system writes confirmations and reads payment orders; a subscriber
    reads every product topic."""
    table = []
    for service in SERVICES:
        writes = [t for t in ALL_TOPICS if t.producer == service or t is DEAD_LETTERS]
        reads = [t for t in ALL_TOPICS if service in t.readers or t.producer == service]
        table += [Grant(service, "WRITE", "topic", t.name) for t in writes]
        table += [Grant(service, "READ", "topic", t.name) for t in reads]
        table += [Grant(service, "DESCRIBE_CONFIGS", "topic", t.name) for t in {*writes, *reads}]
        table += [Grant(service, "READ", "group", service)]
    table += [Grant(FINANCE_SYSTEM, "WRITE", "topic", FINANCE.name),
              Grant(FINANCE_SYSTEM, "READ", "topic", GRANTS.name),  # the payment orders it executes
              Grant(FINANCE_SYSTEM, "READ", "group", FINANCE_SYSTEM)]
    table += [Grant(SUBSCRIBER, "READ", "topic", t.name) for t in PRODUCT_TOPICS]
    table += [Grant(SUBSCRIBER, "READ", "group", SUBSCRIBER)]
    return sorted(table)


Binding = tuple[int, str, int, str, str, int, int]  # resource, name, pattern, principal, host, operation, permission


def bindings(table: list[Grant]) -> set[Binding]:
    """The broker's form: each grant on the name itself and on every namespace under it."""
    return {(RESOURCE[g.resource], name, pattern, f"User:{g.principal}", "*", OPERATION[g.operation], ALLOW)
            for g in table for name, pattern in ((g.name, LITERAL), (f"{g.name}.", PREFIXED))}


async def broker_bindings(kafka: KafkaSettings) -> set[Binding]:
    async with admin_client(kafka) as admin:
        response = await admin._send_request(DescribeAclsRequest(ANY, None, ANY, None, None, ANY, ANY))
    _raise_for(response.error_code, response.error_message)
    return {(resource, name, pattern, principal, host, operation, permission)
            for resource, name, pattern, acls in response.resources
            for principal, host, operation, permission in acls}


async def apply(kafka: KafkaSettings) -> tuple[int, int]:
    """Make the broker's ACLs exactly the table (idempotent): create what is missing, delete
    what the table no longer grants. Returns (created, deleted)."""
    wanted, present = bindings(grants()), await broker_bindings(kafka)
    async with admin_client(kafka) as admin:
        responses = await asyncio.gather(
            *(admin._send_request(CreateAclsRequest(*b)) for b in sorted(wanted - present)),
            *(admin._send_request(DeleteAclsRequest(*b)) for b in sorted(present - wanted)))
    for response in responses:
        for result in getattr(response, "creation_responses", None) or getattr(response, "filter_responses", []):
            _raise_for(result[0], result[1])
    return len(wanted - present), len(present - wanted)


def _raise_for(code: int, message: str | None) -> None:
    if code:
        raise RuntimeError(f"the broker refused an ACL request: error {code} {message or ''}".strip())


def markdown() -> str:
    """The table for the documentation: principal, topics written, topics read, groups."""
    principals = sorted({g.principal for g in grants()}, key=lambda p: (p not in SERVICES, p))
    rows = ["| principal | writes | reads | consumer groups |", "| --- | --- | --- | --- |"]
    for p in principals:
        cells = [", ".join(f"`{g.name}`" for g in grants() if g.principal == p and (g.operation, g.resource) == kind)
                 for kind in (("WRITE", "topic"), ("READ", "topic"), ("READ", "group"))]
        rows.append(f"| `{p}` | {' | '.join(c or '-' for c in cells)} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())
