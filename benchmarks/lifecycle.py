"""`make bench`: figures for whole exchanges, from enrolment to the committed grant's email.

Starts the four services (as `make run` does, on the infrastructure `deploy/with-infra.sh`
brought up) in a fresh topic namespace with fresh databases, publishes a call in automatic
mode with hosts and offers through the public APIs, then drives BENCH_APPLICATIONS exchanges
with BENCH_CONCURRENCY clients over HTTP: enrol a visitor, submit, (automatic approval),
the host accepts, (grant committed), (email sent). What the system does on its own is
observed on its Kafka topics, each event timestamped on receipt. Then: how long until the
system is at rest, its CPU at rest, and the same exchanges through a bare aiokafka + PyMongo
pipeline on the same broker and database (baseline.py) for comparison.

    deploy/with-infra.sh .venv/bin/python benchmarks/lifecycle.py
Environment: BENCH_APPLICATIONS (200), BENCH_CONCURRENCY (10), BENCH_PORT_BASE (8001: the
services listen on it and the next three ports), BENCH_KEEP=1 keeps the run's topics,
databases and mail, CX_LOCAL_DIR (where deploy/infra.sh keeps logs and pid files).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient

from cx_shared.auth import issue_token
from cx_shared.events.assessment import ApplicationApproved, ApplicationRejected, ApplicationWaitlisted
from cx_shared.events.grants import BudgetOpened, GrantCommitted, GrantRefused
from cx_shared.events.notifications import EmailFailed, EmailSent
from cx_shared.kafka import delete_topics, ensure_topics
from cx_shared.settings import KafkaSettings, ServiceSettings
from cx_shared.testing.consortium import consortium
from cx_shared.testing.infra import Infra, infra_from_variables
from cx_shared.topics import ALL_TOPICS, ASSESSMENT, DEAD_LETTERS, GRANTS, NOTIFICATIONS, consumer_group, qualified

import baseline
from measure import (Groups, Watch, cpu_percent, cpu_since, cpu_snapshot, default_keys, header, infra_pids,
                     json_line, now, rate, rounded, spread, table, tenths)
from processes import ROOT, Processes, tail, wait_ready

SERVICES = ("applications", "assessment", "grants", "notifications")
WEEKS = 20  # date windows the exchanges are spread over: one (offer, week) never holds two
OFFER_CAPACITY = 3  # visitors at once: both services count only exchanges overlapping in time
REST_AFTER_S, CPU_WINDOW_S = 30, 10
HOST_PLACES = [("DE", "Munich"), ("FR", "Lyon"), ("IT", "Prato"), ("PT", "Porto"), ("BE", "Ghent"),
               ("FI", "Tampere"), ("CZ", "Brno"), ("AT", "Graz"), ("DK", "Aarhus"), ("NL", "Eindhoven")]
VISITOR_CITIES = ["Madrid", "Barcelona", "Valencia", "Seville"]  # all in ES: every exchange is transnational


@dataclass(frozen=True)
class Config:
    applications: int
    concurrency: int
    port_base: int
    local_dir: Path
    infra: Infra  # the broker as the admin, and each service's password
    mongo_url: str
    keep: bool
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @classmethod
    def from_env(cls) -> Config:
        e = os.environ
        if infra_from_variables() is None:
            raise SystemExit("no Kafka/MongoDB settings: run through deploy/with-infra.sh (make bench)")
        return cls(int(e.get("BENCH_APPLICATIONS") or 200), int(e.get("BENCH_CONCURRENCY") or 10),
                   int(e.get("BENCH_PORT_BASE") or 8001), Path(e.get("CX_LOCAL_DIR") or ROOT / ".local"),
                   infra_from_variables(), e.get("MONGODB_URL", "mongodb://127.0.0.1:27017/"),
                   e.get("BENCH_KEEP") == "1")

    @property
    def namespace(self) -> str:
        return f"bench{self.run_id}"

    @property
    def kafka(self) -> KafkaSettings:
        return self.infra.kafka

    def database(self, service: str) -> str:
        return f"bench_{self.run_id}_{service}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port_base + SERVICES.index(service)}"

    @property
    def timeout(self) -> float:  # the product is slow: generous, but a run always ends
        return max(600.0, self.applications * 5.0)


# --- the system ---------------------------------------------------------------------------------

def start_services(processes: Processes, cfg: Config) -> None:
    for name in SERVICES:
        port = cfg.port_base + SERVICES.index(name)
        processes.start(name, ["-m", name], {
            **cfg.infra.kafka_env(name),
            "HTTP_PORT": str(port), "TOPIC_NAMESPACE": cfg.namespace, "MONGODB_DATABASE": cfg.database(name),
            "DEV_TOKENS": "true", "LOG_JSON": "true", "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"})


def product_keys(record) -> list[str]:
    """Events by `<type>|<exchange>`; emails also by `<type>|<exchange>|<type of their cause>`."""
    keys = default_keys(record)
    if header(record, "ce_type") in (EmailSent.ce_type(), EmailFailed.ce_type()):
        data = json.loads(record.value or b"{}")
        keys.append(f"{header(record, 'ce_type')}|{data.get('application_id')}|{data.get('cause_event_type')}")
    return keys


def watched_topics(cfg: Config) -> list[str]:
    return [qualified(t, cfg.namespace) for t in (ASSESSMENT, GRANTS, NOTIFICATIONS, DEAD_LETTERS)]


# --- the programme: tokens, partnership, call, hosts --------------------------------------------

SETTINGS = ServiceSettings()


def bearer(subject: str, role: str, org: str | None = None) -> dict[str, str]:
    token = issue_token(SETTINGS.jwt_secret, SETTINGS.jwt_issuer, subject, [role], organisation_id=org,
                        programme=role == "programme_manager")
    return {"Authorization": f"Bearer {token}"}


class Refused(Exception):
    """The product answered a request with an error."""


async def post(client: httpx.AsyncClient, url: str, body: dict, headers: dict, expect: int = 201) -> dict:
    response = await client.post(url, json=body, headers=headers)
    if response.status_code != expect:
        raise Refused(f"POST {url} -> {response.status_code} {response.text[:300]}")
    return response.json()


def today() -> date:
    return datetime.now(UTC).date()  # the services' "today"


def first_monday(after_days: int) -> date:
    day = today() + timedelta(days=after_days)
    return day + timedelta(days=(7 - day.weekday()) % 7)


@dataclass
class Programme:
    """What the exchanges need: the call, and hosts each with one offer."""

    call_id: str
    hosts: list[dict]  # {organisation_id, subject, offer_id}
    manager: dict


async def set_up(client: httpx.AsyncClient, cfg: Config, watch: Watch) -> Programme:
    manager = bearer(f"bench-manager-{cfg.run_id}", "programme_manager")
    apps = cfg.url("applications")
    partnership = await post(client, f"{apps}/partnerships", {
        "name": f"Bench partnership {cfg.run_id}", "members": consortium(), "ecosystems": ["electronics"],
        "contact_email": f"contact.{cfg.run_id}@bench.example.eu"}, manager)
    call = await post(client, f"{apps}/calls", {
        "partnership_id": partnership["partnership_id"], "title": f"Bench call {cfg.run_id}",
        "opens_on": str(today() - timedelta(days=1)), "closes_on": str(today() + timedelta(days=240)),
        # lump sums are a few thousand euros: 10,000 per exchange leaves every one room
        "budget_cents": cfg.applications * 1_000_000, "assessment_mode": "automatic"}, manager)
    count = max(3, math.ceil(cfg.applications / WEEKS))
    gate = asyncio.Semaphore(cfg.concurrency)
    hosts = await asyncio.gather(*(enrol_host(client, cfg, j, gate) for j in range(count)))
    await call_known(client, cfg, call["call_id"], manager, watch)
    return Programme(call["call_id"], list(hosts), manager)


async def enrol_host(client: httpx.AsyncClient, cfg: Config, j: int, gate: asyncio.Semaphore) -> dict:
    country, city = HOST_PLACES[j % len(HOST_PLACES)]
    subject = f"host-{cfg.run_id}-{j}"
    async with gate:
        org = await post(client, f"{cfg.url('applications')}/organisations", {
            "legal_name": f"{city} host {j} {cfg.run_id}", "country": country, "city": city,
            "organisation_type": "cluster_organisation", "ecosystems": ["electronics"], "roles": ["host"],
            "contact": {"name": f"Exchange desk {city}", "email": f"h{j}.{cfg.run_id}@bench.example.eu",
                        "language": "en"}}, bearer(subject, "host"))
        host_id = org["organisation_id"]
        offer = await post(client, f"{cfg.url('applications')}/offers", {
            "host_id": host_id, "title": f"Pilot line {j}", "description": "Photonics pilot line visits.",
            "ecosystem": "electronics", "window_start": str(today() + timedelta(days=20)),
            "window_end": str(today() + timedelta(days=230)), "capacity": OFFER_CAPACITY, "language": "en"},
            bearer(subject, "host", host_id))
    return {"organisation_id": host_id, "subject": subject, "offer_id": offer["offer_id"]}


async def call_known(client: httpx.AsyncClient, cfg: Config, call_id: str, manager: dict, watch: Watch) -> None:
    """Assessment holds the call and grants opened its budget before the first submission, so
    the clock measures exchanges, not the call's publication."""
    await watch.first([f"{BudgetOpened.ce_type()}|{call_id}"], 120)
    for _ in range(240):
        if (await client.get(f"{cfg.url('assessment')}/calls/{call_id}", headers=manager)).status_code == 200:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"assessment does not know call {call_id} after 120s")


# --- one exchange ---------------------------------------------------------------------------------

@dataclass
class Exchange:
    index: int
    application_id: str | None = None
    began: float | None = None
    submitted: float | None = None
    decided: float | None = None
    accepted: float | None = None
    committed: float | None = None
    emailed: float | None = None
    error: str | None = None


async def live(x: Exchange, client: httpx.AsyncClient, cfg: Config, programme: Programme, watch: Watch,
               deadline: float) -> None:
    """Enrol → submit → approved → host accepts → committed → emailed, each step timed."""
    host = programme.hosts[x.index % len(programme.hosts)]
    start = first_monday(30) + timedelta(weeks=(x.index // len(programme.hosts)) % WEEKS)
    subject = f"visitor-{cfg.run_id}-{x.index}"
    x.began = now()
    org = await post(client, f"{cfg.url('applications')}/organisations", {
        "legal_name": f"Visitor {x.index} {cfg.run_id}", "country": "ES",
        "city": VISITOR_CITIES[x.index % len(VISITOR_CITIES)], "organisation_type": "cluster_organisation",
        "ecosystems": ["electronics"], "roles": ["visitor"],
        "contact": {"name": f"Visitor {x.index}", "email": f"v{x.index}.{cfg.run_id}@bench.example.es",
                    "language": "en"}}, bearer(subject, "visitor"))
    visitor = bearer(subject, "visitor", org["organisation_id"])
    application = await post(client, f"{cfg.url('applications')}/applications", {
        "call_id": programme.call_id, "visitor_id": org["organisation_id"], "host_id": host["organisation_id"],
        "offer_id": host["offer_id"], "purposes": ["take_up_new_technologies"],
        "objectives": "See the host's pilot line for laser welding.", "planned_start": str(start),
        "planned_end": str(start + timedelta(days=4)), "travel_mode": "green"},
        {**visitor, "Idempotency-Key": str(uuid.uuid4())})
    x.application_id, x.submitted = application["application_id"], now()
    decision, x.decided = await watch.first(
        [f"{t.ce_type()}|{x.application_id}" for t in (ApplicationApproved, ApplicationRejected,
                                                       ApplicationWaitlisted)], deadline - now())
    if not decision.startswith(ApplicationApproved.ce_type()):
        raise Refused(f"not approved: {decision}")
    await post(client, f"{cfg.url('assessment')}/applications/{x.application_id}/host-decision", {"accept": True},
               bearer(host["subject"], "host", host["organisation_id"]), expect=200)
    x.accepted = now()
    grant, x.committed = await watch.first(
        [f"{t.ce_type()}|{x.application_id}" for t in (GrantCommitted, GrantRefused)], deadline - now())
    if not grant.startswith(GrantCommitted.ce_type()):
        raise Refused(f"no grant: {grant}")
    _, x.emailed = await watch.first(
        [f"{t.ce_type()}|{x.application_id}|{GrantCommitted.ce_type()}" for t in (EmailSent, EmailFailed)],
        deadline - now())


async def drive(client: httpx.AsyncClient, cfg: Config, programme: Programme, watch: Watch) -> tuple[list, float]:
    """C clients, each living one exchange after another (a closed loop). They take the next
    exchange from one shared list, so all C stay busy until the last C exchanges: a client
    with a fixed share would finish early or late by chance and leave the run's last tenth
    with fewer clients, which would read as the system slowing down."""
    exchanges = [Exchange(i) for i in range(cfg.applications)]
    started = now()
    deadline = started + cfg.timeout
    finished = 0
    queue = iter(exchanges)  # one iterator, shared: next() runs between awaits, so no two take one

    async def client_loop(c: int) -> None:
        nonlocal finished
        for x in queue:
            if now() > deadline:
                return
            try:
                await live(x, client, cfg, programme, watch, deadline)
            except (Refused, TimeoutError, httpx.HTTPError) as exc:
                x.error = failure(exc)
            finished += 1
            if finished % max(1, cfg.applications // 10) == 0:
                say(f"{finished}/{cfg.applications} exchanges ({rate(finished, now() - started):.2f}/s)")

    await asyncio.gather(*(client_loop(c) for c in range(cfg.concurrency)))
    return exchanges, started


async def watched(work, processes: Processes):
    """The work's result, or the error of a service that stopped meanwhile (rather than every
    exchange waiting for the overall timeout)."""
    async def watchdog() -> None:
        while True:
            processes.check_alive()
            await asyncio.sleep(2)

    task, dog = asyncio.ensure_future(work), asyncio.ensure_future(watchdog())
    try:
        await asyncio.wait([task, dog], return_when=asyncio.FIRST_COMPLETED)
        if dog.done():
            task.cancel()
            dog.result()  # raises what stopped
        return task.result()
    finally:
        for t in (task, dog):
            t.cancel()
        await asyncio.gather(task, dog, return_exceptions=True)


def failure(exc: Exception) -> str:
    where = ""
    if isinstance(exc, httpx.HTTPError):
        try:
            where = f" ({exc.request.method} {exc.request.url})"
        except RuntimeError:  # an error raised before the request was built
            pass
    return f"{type(exc).__name__}: {exc}{where}"


# --- at rest ------------------------------------------------------------------------------------

async def unsent_mail(client: httpx.AsyncClient, cfg: Config, manager: dict) -> int:
    count = 0
    for status in ("pending", "sending"):
        response = await client.get(f"{cfg.url('notifications')}/notifications", params={"status": status},
                                    headers=manager)
        response.raise_for_status()
        count += len(response.json())
    return count


async def at_rest(client: httpx.AsyncClient, cfg: Config, manager: dict, timeout: float) -> tuple[float | None, str]:
    """When every group has consumed every record and no email waits to be sent: the moment of
    the first of two such checks a second apart with no record added in between (an outbox
    relay may still publish events caused by the last records)."""
    groups = [consumer_group(name, cfg.namespace) for name in SERVICES]
    deadline = now() + timeout
    last = "not checked"
    async with Groups(cfg.kafka, groups, [qualified(t, cfg.namespace) for t in ALL_TOPICS]) as lag:
        while now() < deadline:
            ends, seen = await lag.ends(), now()
            behind = await lag.lagging(ends)
            mail = await unsent_mail(client, cfg, manager)
            if not behind and not mail:
                await asyncio.sleep(1.0)
                if (await lag.ends() == ends and not await lag.lagging(ends)
                        and not await unsent_mail(client, cfg, manager)):
                    return seen, "at rest"
            last = f"{len(behind)} lagging ({'; '.join(behind[:3])}), {mail} emails unsent"
            await asyncio.sleep(0.25)
    return None, last


# --- figures ------------------------------------------------------------------------------------

def lifecycle_figures(exchanges: list[Exchange], started: float, cfg: Config, timed_out: bool) -> dict:
    done = [x for x in exchanges if x.emailed is not None]
    end = max((x.emailed for x in done), default=now())
    commitments = [x.committed for x in exchanges if x.committed is not None]
    return {
        "run_id": cfg.run_id, "applications": cfg.applications, "concurrency": cfg.concurrency, "completed": len(done),
        "failed": sum(1 for x in exchanges if x.error), "not_run": sum(1 for x in exchanges if x.began is None),
        "timed_out": timed_out, "wall_s": rounded(end - started), "exchanges_per_s": rounded(rate(len(done), end - started), 3),
        "submit_to_decision_s": spread([x.decided - x.submitted for x in exchanges if x.decided]),
        "acceptance_to_commitment_s": spread([x.committed - x.accepted for x in exchanges if x.committed]),
        "submit_to_commitment_s": spread([x.committed - x.submitted for x in exchanges if x.committed]),
        "commitment_to_email_s": spread([x.emailed - x.committed for x in done]),
        **tenths(started, commitments),
    }


def report(figures: dict, exchanges: list[Exchange]) -> None:
    def ps(name: str) -> str:
        s = figures.get(name) or {}
        return " / ".join("-" if s.get(p) is None else f"{s[p]:.2f}" for p in ("p50", "p95", "p99"))

    cpu = figures.get("cpu_at_rest_percent") or {}
    rows = [
        ("exchanges (completed / asked)", f"{figures['completed']} / {figures['applications']}"
                                          f"  (concurrency {figures['concurrency']})"),
        ("failed / not run", f"{figures['failed']} / {figures['not_run']}"
                             + ("  TIMED OUT: partial figures" if figures["timed_out"] else "")),
        ("code / cores / load (1 min) before, after", f"{figures.get('code')} / {figures.get('cores')} / "
                                                      f"{figures.get('load_1m_before')}, {figures.get('load_1m_after')}"),
        ("wall time, s", figures["wall_s"]),
        ("exchanges/s", figures["exchanges_per_s"]),
        ("submit -> decision, s  p50/p95/p99", ps("submit_to_decision_s")),
        ("acceptance -> commitment, s  p50/p95/p99", ps("acceptance_to_commitment_s")),
        ("submit -> commitment, s  p50/p95/p99", ps("submit_to_commitment_s")),
        ("commitment -> email sent, s  p50/p95/p99", ps("commitment_to_email_s")),
        ("exchanges/s, first tenth", figures["first_tenth_per_s"]),
        ("exchanges/s, last tenth", figures["last_tenth_per_s"]),
        ("last tenth / first tenth", figures["last_over_first"]),
        ("exchanges/s in each tenth", " ".join(f"{r:.2f}" for r in figures.get("each_tenth_per_s") or [])),
        ("last commitment -> at rest (lag 0, mail sent), s", figures.get("settle_s")),
        ("emails sent (EmailSent events)", figures.get("emails_sent")),
        ("dead letters", figures.get("dead_letters")),
        *[(f"CPU during the run, ms per exchange: {name}", f"{ms:.0f}")
          for name, ms in (figures.get("cpu_ms_per_exchange") or {}).items()],
        ("CPU during the run, ms per exchange: total", f"{figures.get('cpu_ms_per_exchange_total', 0):.0f}"),
        *[(f"CPU at rest, % of a core: {name}", f"{c['percent']:.1f}"
           + (f"  ({c['processes']} processes)" if c["processes"] > 1 else "")) for name, c in cpu.items()],
        ("CPU at rest, % of a core: total", f"{figures.get('cpu_at_rest_total_percent', 0):.1f}"),
        ("baseline exchanges/s (aiokafka + PyMongo, 5 hops)", figures.get("baseline_exchanges_per_s")),
        ("baseline latency, s  p50/p95/p99", ps("baseline_latency_s")),
        ("product / baseline", figures.get("product_over_baseline")),
    ]
    print("\nClusterXchange lifecycle benchmark")
    print(table(rows))
    errors = [x for x in exchanges if x.error]
    for x in errors[:5]:
        print(f"  error, exchange {x.index} ({x.application_id}): {x.error}")
    print(json_line(figures), flush=True)


def code_version() -> str:
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- the run --------------------------------------------------------------------------------------

async def bench(cfg: Config, processes: Processes) -> None:
    say(f"run {cfg.run_id}: {cfg.applications} exchanges, {cfg.concurrency} clients, "
        f"topics *.{cfg.namespace}, services on ports {cfg.port_base}-{cfg.port_base + 3}")
    figures, exchanges = await run_product(cfg, processes)
    await asyncio.sleep(max(0.0, ended(exchanges) + REST_AFTER_S - now()))
    figures.update(await cpu_at_rest(cfg, processes))
    processes.stop(list(SERVICES))
    figures.update(await compare_with_baseline(cfg, processes, figures["exchanges_per_s"]))
    report(figures, exchanges)


async def run_product(cfg: Config, processes: Processes) -> tuple[dict, list[Exchange]]:
    load_before = os.getloadavg()[0]
    # The services' principals may not create topics: the admin does, as a deployment would.
    await ensure_topics(cfg.kafka, cfg.namespace, baseline.PARTITIONS, 1)
    start_services(processes, cfg)
    await wait_ready(processes, {name: cfg.url(name) for name in SERVICES})
    watch = Watch(cfg.kafka, watched_topics(cfg), product_keys)
    # Idle connections are dropped before uvicorn's 5 s keep-alive ends, or a request sent on a
    # connection the server is closing fails (ReadError) for no fault of the product.
    limits = httpx.Limits(max_connections=4 * cfg.concurrency, keepalive_expiry=2.0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        try:
            await watch.start()
            programme = await set_up(client, cfg, watch)
            say(f"call {programme.call_id} with {len(programme.hosts)} hosts; driving the exchanges")
            roots = {**processes.pids(), **infra_pids(cfg.local_dir)}
            cpu_before = cpu_snapshot(roots)
            exchanges, started = await watched(drive(client, cfg, programme, watch), processes)
            figures = lifecycle_figures(exchanges, started, cfg, timed_out=now() > started + cfg.timeout)
            figures.update(cpu_per_exchange(cpu_since(cpu_before, roots), figures["completed"]))
            # Other work on the machine skews every figure: say how busy it was.
            figures.update(code=code_version(), cores=os.cpu_count(), load_1m_before=round(load_before, 1),
                           load_1m_after=round(os.getloadavg()[0], 1))
            figures.update(await settled(client, cfg, programme, exchanges, watch))
        finally:
            await watch.stop()
    return figures, exchanges


def ended(exchanges: list[Exchange]) -> float:
    """The end of the run: the last email, or commitment, seen."""
    return max((x.emailed or x.committed or 0.0 for x in exchanges), default=0.0) or now()


async def settled(client: httpx.AsyncClient, cfg: Config, programme: Programme, exchanges: list[Exchange],
                  watch: Watch) -> dict:
    say("waiting until the system is at rest")
    rested, state = await at_rest(client, cfg, programme.manager, timeout=max(300.0, cfg.applications))
    if rested is None:
        say(f"not at rest: {state}")
    last_commit = max((x.committed for x in exchanges if x.committed), default=None)
    return {"settle_s": rounded(rested - last_commit) if rested and last_commit else None,
            "emails_sent": watch.types[EmailSent.ce_type()],
            "dead_letters": watch.per_topic[qualified(DEAD_LETTERS, cfg.namespace)]}


def cpu_per_exchange(used: dict[str, tuple[int, float]], completed: int) -> dict:
    """Where the run's CPU went: milliseconds of CPU per completed exchange, per process."""
    per = {name: round(1000 * seconds / max(completed, 1), 1) for name, (_, seconds) in used.items()}
    return {"cpu_ms_per_exchange": per, "cpu_ms_per_exchange_total": round(sum(per.values()), 1)}


async def cpu_at_rest(cfg: Config, processes: Processes) -> dict:
    say(f"CPU at rest over {CPU_WINDOW_S}s")
    cpu = await cpu_percent({**processes.pids(), **infra_pids(cfg.local_dir)}, CPU_WINDOW_S)
    return {"cpu_at_rest_percent": cpu, "cpu_at_rest_total_percent": round(sum(c["percent"] for c in cpu.values()), 1)}


async def compare_with_baseline(cfg: Config, processes: Processes, product: float | None) -> dict:
    say("baseline: the same exchanges through aiokafka + PyMongo")
    try:
        base = await baseline.run(applications=cfg.applications, concurrency=cfg.concurrency,
                                  infra=cfg.infra, mongo_url=cfg.mongo_url, run_id=cfg.run_id,
                                  processes=processes, timeout=cfg.timeout, keep=cfg.keep)
    except Exception as exc:  # the product's figures still count
        say(f"baseline failed: {exc!r}")
        base = {}
    bare = base.get("exchanges_per_s")
    return {"baseline_exchanges_per_s": bare, "baseline_completed": base.get("completed"),
            "baseline_latency_s": base.get("latency_s"),
            "product_over_baseline": round(product / bare, 4) if product and bare else None}


async def forget(cfg: Config) -> None:
    """The run's topics, databases and mail go, so repeated runs do not fill the shared infra."""
    await delete_topics(cfg.kafka, cfg.namespace)
    mongo = AsyncMongoClient(cfg.mongo_url)
    try:
        for name in SERVICES:
            await mongo.drop_database(cfg.database(name))
    finally:
        await mongo.close()
    marker = f".{cfg.run_id}@bench.example.".encode()
    for path in (cfg.local_dir / "mail").glob("*.eml"):
        if marker in path.read_bytes():
            path.unlink(missing_ok=True)


async def main() -> int:
    cfg = Config.from_env()
    processes = Processes(cfg.local_dir / "logs")
    task = asyncio.current_task()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await bench(cfg, processes)
        return 0
    except asyncio.CancelledError:
        say("interrupted")
        return 130
    except Exception as exc:
        say(f"failed: {exc!r}")
        for name in processes.running:
            say(f"{name} log tail:\n{tail(processes.log_of(name), 5)}")
        return 1
    finally:
        processes.stop()
        if not cfg.keep:
            try:
                await forget(cfg)
            except Exception as exc:  # cleaning up must not hide the figures
                say(f"could not remove the run's topics/databases/mail: {exc!r}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
