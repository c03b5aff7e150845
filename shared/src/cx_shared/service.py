"""One assembly for every service: settings, database, broker, consumer, outbox relay
and the FastAPI app, started and stopped together. A service only supplies its
handler table, its storage, its outbox collections and its API routers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka.structs import ConsumerRecord
from fastapi import APIRouter, Depends, FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from cx_shared import catalog, metrics, openapi, rate_limit, tracing
from cx_shared.consumer import Consumer, Handler
from cx_shared.doorbell import Doorbells
from cx_shared.events import Event
from cx_shared.http import install_body_limit, install_correlation, install_problem_handlers, ops_router
from cx_shared.kafka import Publisher, broker_security, ensure_topics, warn_about_retention
from cx_shared.logging import configure_logging, get_logger
from cx_shared.outbox import OutboxRelay, adds_events
from cx_shared.query_audit import QueryAudit
from cx_shared.settings import ServiceSettings
from cx_shared.personal_data.keys import KeyRing
from cx_shared.topics import ALL_TOPICS, DEAD_LETTERS, KEYS, Topic, qualified

log = get_logger(__name__)


async def _raw_body(message: Any) -> bytes:
    """Hand the consumer the raw bytes: decoding is ours, so bad JSON can be dead-lettered."""
    return message.body


class Service:
    def __init__(self, settings: ServiceSettings, *, title: str, description: str,
                 handlers: Mapping[type[Event], Handler], storage: Callable[[AsyncDatabase], Any],
                 outbox_collections: Sequence[str], routers: Sequence[APIRouter] = (),
                 background: Sequence[Callable[[Any, Doorbells], Awaitable[None]]] = (), version: str = "0.1.0",
                 key_ring: bool = False):
        self.settings, self.title, self.description, self.version = settings, title, description, version
        self.handlers, self.storage_factory = dict(handlers), storage
        self.outbox_collections, self.routers, self.background = list(outbox_collections), routers, background
        # Settings the lifespan will refuse get no credentials here: nothing connects before that check.
        security = None if settings.kafka_refusals() else broker_security(settings)
        self.broker = KafkaBroker(settings.kafka_bootstrap_servers, client_id=settings.service_name,
                                  security=security, logger=None, middlewares=_middlewares(settings.service_name))
        self.publisher = Publisher(settings, settings.topic_namespace, settings.service_name)
        self.consumer: Consumer | None = None
        self.storage: Any = None
        self._tasks: list[asyncio.Task] = []
        # The subjects' keys (cx_shared.personal_data.keys), for a service that opens personal data.
        self.keys = KeyRing(settings, settings.topic_namespace, self.publisher if settings.service_name ==
                            KEYS.producer else None) if key_ring else None
        self._declare_subscriber()

    def _declare_subscriber(self) -> None:
        probe = Consumer(self.handlers, None, self.publisher, source=self.settings.source,
                         group=self.settings.consumer_group, namespace=self.settings.topic_namespace)
        topics = probe.topics()
        if not topics:
            return
        names = ", ".join(sorted(cls.ce_type() for cls in self.handlers))

        @self.broker.subscriber(*topics, group_id=self.settings.consumer_group, ack_policy=AckPolicy.ACK,
                                auto_offset_reset="earliest", decoder=_raw_body, batch=True,
                                max_records=self.settings.consumer_batch_records,
                                # Records are handed over the moment they arrive; these only space
                                # out an idle consumer's empty polls, long-polling fetches and its
                                # fetcher's safety-net wake-ups (aiokafka's 200 ms: five a second).
                                batch_timeout_ms=1000, fetch_max_wait_ms=3000, consumer_timeout_ms=1000,
                                title=f"{self.settings.service_name}-events",
                                description=f"CloudEvents (binary mode) consumed: {names}")
        async def on_events(bodies: list[bytes], message: KafkaMessage) -> None:
            records: tuple[ConsumerRecord, ...] = message.raw_message  # type: ignore[assignment]
            await self.consumer.consume_batch(records, self.settings.consumer_concurrency)  # type: ignore[union-attr]
            metrics.observe_lag(message.consumer, records)

    def topics_used(self) -> list[Topic]:
        """What this service's principal reads and writes: the only topics it can see."""
        consumed = {cls.topic for cls in self.handlers} | ({KEYS} if self.keys else set())
        return [t for t in ALL_TOPICS if t in consumed or t.producer == self.settings.service_name or t is DEAD_LETTERS]

    def asyncapi(self) -> dict[str, Any]:
        """The whole system's event catalog (every service serves the same), in this namespace."""
        return catalog.served(self.settings.topic_namespace)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI):
        s = self.settings
        configure_logging(s.service_name, s.log_level, s.log_json)
        if refusals := s.refusals() + s.kafka_refusals():
            raise RuntimeError("refusing to start: " + "; ".join(refusals))
        self.doorbells = Doorbells(s.mongodb_database)
        listeners = [self.doorbells, *([QueryAudit(s.query_audit_file, s.service_name)] if s.query_audit_file else [])]
        self.mongo = AsyncMongoClient(s.mongodb_url, tz_aware=True, serverSelectionTimeoutMS=10_000,
                                      event_listeners=listeners)
        self.db = self.mongo[s.mongodb_database]
        self.storage = self.storage_factory(self.db)
        app.state.storage = self.storage
        if hasattr(self.storage, "init"):
            await self.storage.init()
        await ensure_topics(s, s.topic_namespace, s.topic_partitions, s.topic_replication, self.topics_used(),
                            s.topic_retention_ms, s.dead_letter_retention_ms)
        await warn_about_retention(s, [qualified(t, s.topic_namespace) for t in self.topics_used()],
                                   s.topic_retention_ms, s.dead_letter_retention_ms)
        await self.publisher.start()
        if self.keys:  # every key known before the first event is handled
            await self.keys.start()
            self.storage.keys = app.state.keys = self.keys
        self.consumer = Consumer(self.handlers, self.storage, self.publisher, source=s.source,
                                 group=s.consumer_group, namespace=s.topic_namespace,
                                 max_attempts=s.consumer_max_attempts, backoff_seconds=s.consumer_backoff_seconds,
                                 backoff_max_seconds=s.consumer_backoff_max_seconds)
        doorbell = self.doorbells.doorbell(*self.outbox_collections, interest=adds_events) if s.outbox_wake_up else None
        relay = OutboxRelay(self.db, self.outbox_collections, self.publisher, s.outbox_poll_seconds, doorbell)
        await relay.start()
        await self.broker.start()
        self._tasks = [asyncio.create_task(job(self.storage, self.doorbells), name=job.__name__)
                       for job in self.background]
        log.info("service started", http_port=s.http_port, topics=self.consumer.topics())
        try:
            yield
        finally:
            log.info("service stopping")
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.broker.stop()
            await relay.stop()
            if self.keys:
                await self.keys.stop()
            await self.publisher.stop()
            await self.mongo.close()
            tracing.shutdown()

    async def readiness_problems(self) -> list[str]:
        problems = []
        try:
            await self.db.command("ping")
        except Exception as exc:  # report, don't raise: this is a probe
            problems.append(f"database: {exc}")
        try:
            if not await self.broker.ping(timeout=3):
                problems.append("kafka: broker did not answer")
        except Exception as exc:
            problems.append(f"kafka: {exc}")
        return problems

    def app(self) -> FastAPI:
        app = FastAPI(title=f"ClusterXchange {self.title}", description=self.description, version=self.version,
                      lifespan=self.lifespan, dependencies=[Depends(rate_limit.by_address)])
        app.state.settings = self.settings
        app.state.rate_limits = rate_limit.RateLimits(self.settings.rate_limit_principal_writes,
                                                      self.settings.rate_limit_per_address)
        app.state.service = self
        install_problem_handlers(app)
        openapi.install(app)
        install_correlation(app)
        app.include_router(ops_router(self))
        for router in self.routers:
            app.include_router(router)
        install_body_limit(app, self.settings.max_body_bytes)
        app.add_middleware(metrics.HttpMetrics)  # outermost: a refused body is counted too
        tracing.instrument_app(app)
        return app


def _middlewares(service_name: str) -> tuple:
    """FastStream's Prometheus middleware always; its telemetry middleware when traces are exported."""
    provider = tracing.configure(service_name)
    if provider is None:
        return (metrics.faststream_middleware(),)
    from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
    return metrics.faststream_middleware(), KafkaTelemetryMiddleware(tracer_provider=provider)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """`python -m <service>`: the HTTP API, the consumer and the relay in one process; SIGTERM
    lets in-flight requests finish and stops the consumer cleanly. An idle connection is kept
    longer than clients and load balancers keep theirs (httpx 5 s, most balancers 60 s): the
    side that closes first must be the client, or a request sent as the server closes is lost
    with "server disconnected"."""
    from cx_shared import server

    server.run(app, host=settings.http_host, port=settings.http_port, log_config=None,
               timeout_graceful_shutdown=10, timeout_keep_alive=75)
