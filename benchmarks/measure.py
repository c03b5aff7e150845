"""What the benchmarks measure with: a watch on topics that timestamps every event on
receipt, consumer-group lag, CPU from /proc, percentiles and rates.

Nothing here knows the product's services: the lifecycle and the baseline both use it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

from cx_shared.kafka import client_options, stop_reading
from cx_shared.settings import KafkaSettings

STILL_GROUP_STATES = {"Stable", "Empty", "Dead"}  # not in the middle of a rebalance


def now() -> float:
    return time.monotonic()


async def partitions_of(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    # The cluster's metadata as the broker tells it now (a consumer without a subscription
    # has none cached for these topics).
    cluster = await consumer._client.fetch_all_metadata()
    return [TopicPartition(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())]


# --- events as they arrive ------------------------------------------------------------------

def header(record, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name and value is not None:
            return value.decode("utf-8", "replace")
    return None


def default_keys(record) -> list[str]:
    """`<ce_type>|<ce_subject>`: one exchange's event of one type."""
    return [f"{header(record, 'ce_type')}|{header(record, 'ce_subject')}"]


class Watch:
    """Reads some topics from their beginning without a consumer group (no rebalance, no
    commit) and remembers when each key was first received; waiters are woken on arrival."""

    def __init__(self, kafka: KafkaSettings, topics: Iterable[str], keys=default_keys):
        self.kafka, self.topics, self.keys = kafka, list(topics), keys
        self.first_seen: dict[str, float] = {}
        self.types: Counter[str] = Counter()  # records received per CloudEvents type
        self.per_topic: Counter[str] = Counter()  # and per topic
        self._waiters: dict[str, list[asyncio.Future]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(**client_options(self.kafka), enable_auto_commit=False,
                                          fetch_max_wait_ms=100)
        await self._consumer.start()
        partitions = await partitions_of(self._consumer, self.topics)
        if not partitions:
            raise RuntimeError(f"none of the topics {self.topics} exists")
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._collect())

    async def stop(self) -> None:
        await stop_reading(self._task, self._consumer)

    async def _collect(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            received = now()
            for records in batches.values():
                for record in records:
                    self.types[header(record, "ce_type") or "?"] += 1
                    self.per_topic[record.topic] += 1
                    for key in self.keys(record):
                        self._arrived(key, received)

    def _arrived(self, key: str, at: float) -> None:
        if key in self.first_seen:
            return  # at-least-once delivery: the first copy is the one that counts
        self.first_seen[key] = at
        for waiter in self._waiters.pop(key, ()):
            if not waiter.done():
                waiter.set_result((key, at))

    async def first(self, keys: list[str], timeout: float) -> tuple[str, float]:
        """The first of these keys to arrive and when; TimeoutError if none comes in time."""
        for key in keys:
            if key in self.first_seen:
                return key, self.first_seen[key]
        loop = asyncio.get_running_loop()
        waiters = [loop.create_future() for _ in keys]
        for key, waiter in zip(keys, waiters):
            self._waiters.setdefault(key, []).append(waiter)
        try:
            done, _ = await asyncio.wait(waiters, timeout=max(timeout, 0.001), return_when=asyncio.FIRST_COMPLETED)
            if not done:
                raise TimeoutError(f"none of {keys} arrived in {timeout:.0f}s")
            return next(iter(done)).result()
        finally:
            for key, waiter in zip(keys, waiters):
                waiter.cancel()
                if waiter in self._waiters.get(key, []):
                    self._waiters[key].remove(waiter)


# --- consumer groups --------------------------------------------------------------------------

class Groups:
    """Lag of consumer groups on some topics: records at the end of a partition that a group
    consuming it has not committed yet."""

    def __init__(self, kafka: KafkaSettings, groups: list[str], topics: list[str]):
        self.kafka, self.groups, self.topics = kafka, groups, topics

    async def __aenter__(self) -> Groups:
        self.admin = AIOKafkaAdminClient(**client_options(self.kafka))
        self.consumer = AIOKafkaConsumer(**client_options(self.kafka), enable_auto_commit=False)
        await self.admin.start()
        await self.consumer.start()
        self.partitions = await partitions_of(self.consumer, self.topics)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def ends(self) -> dict[TopicPartition, int]:
        return await self.consumer.end_offsets(self.partitions)

    async def describe(self, group: str) -> tuple[str, set[str], int]:
        """(state, topics its members subscribe to, members) as the group coordinator tells."""
        state, topics, members = "Dead", set(), 0
        for response in await self.admin.describe_consumer_groups([group]):  # one at a time: aiokafka 0.14
            for described in response.groups:  # (error, group, state, protocol_type, protocol, members)
                state = described[2]
                for member in described[5]:
                    members += 1
                    if member[3]:
                        topics |= set(ConsumerProtocolMemberMetadata.decode(member[3]).subscription)
        return state, topics, members

    async def lagging(self, ends: dict[TopicPartition, int]) -> list[str]:
        """What is not consumed yet: `group topic[partition] committed/end`, or a rebalancing group."""
        behind = []
        for group in self.groups:
            state, subscribed, _ = await self.describe(group)
            if state not in STILL_GROUP_STATES:
                behind.append(f"{group} {state}")
                continue
            committed = await self.admin.list_consumer_group_offsets(group, partitions=list(ends))
            # A group consumes what its members subscribe to and what it committed on before.
            topics = subscribed | {tp.topic for tp, meta in committed.items() if meta is not None and meta.offset >= 0}
            for tp, end in ends.items():
                done = committed.get(tp).offset if committed.get(tp) is not None else -1
                if tp.topic in topics and end > 0 and done < end:
                    behind.append(f"{group} {tp.topic}[{tp.partition}] {max(done, 0)}/{end}")
        return behind

    async def all_joined(self) -> bool:
        """Every group stable with at least one member (its consumers are assigned partitions)."""
        for group in self.groups:
            state, _, members = await self.describe(group)
            if state != "Stable" or members == 0:
                return False
        return True


# --- CPU from /proc ----------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from the 3rd on (the name may hold spaces)


def cpu_ticks(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[11]) + int(fields[12]) if fields else None  # utime + stime


def family(root: int) -> list[int]:
    """The process and every process whose parent chain leads to it (postgres backends, a
    wrapper's child)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))):
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return [pid for pid in found if pid in parents]


def cpu_snapshot(roots: dict[str, int]) -> dict[str, dict[int, int | None]]:
    """The CPU ticks so far of each process and its descendants."""
    return {name: {pid: cpu_ticks(pid) for pid in family(root)} for name, root in roots.items()}


def cpu_since(before: dict[str, dict[int, int | None]], roots: dict[str, int]) -> dict[str, tuple[int, float]]:
    """Per process: (processes in its family, CPU seconds used since `before`)."""
    result = {}
    for name, root in roots.items():
        after = {pid: cpu_ticks(pid) for pid in family(root)}
        # A process born meanwhile counts from zero; one that ended is lost (rare).
        ticks = sum(t - (before.get(name, {}).get(pid) or 0) for pid, t in after.items() if t is not None)
        result[name] = (len(after), ticks / CLOCK_TICKS)
    return result


async def cpu_percent(roots: dict[str, int], seconds: float) -> dict[str, dict]:
    """Percent of one core each process (with its descendants) used over `seconds`."""
    before = cpu_snapshot(roots)
    await asyncio.sleep(seconds)
    return {name: {"pid": roots[name], "processes": n, "percent": round(100 * used / seconds, 1)}
            for name, (n, used) in cpu_since(before, roots).items()}


def infra_pids(local_dir: Path) -> dict[str, int]:
    """The infrastructure's processes, from the pid files deploy/infra.sh writes."""
    pids = {}
    for path in sorted((local_dir / "run").glob("*.pid")):
        try:
            pid = int(path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if Path(f"/proc/{pid}").exists():
            pids[path.stem] = pid
    return pids


# --- figures -----------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def spread(values: list[float]) -> dict[str, float | None]:
    return {f"p{p}": rounded(percentile(values, p), 3) for p in (50, 95, 99)}


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def rate(count: int, seconds: float | None) -> float | None:
    return count / seconds if seconds and seconds > 0 else None


def tenths(started: float, commitments: list[float]) -> dict[str, float | None]:
    """Exchanges/s over the first tenth of the commitments (from the start of the run) and
    over the last tenth (from the commitment before it): does the system slow as it fills?"""
    times = sorted(commitments)
    k = max(1, len(times) // 10)
    first = rate(k, times[k - 1] - started) if times else None
    last = rate(k, times[-1] - times[-k - 1]) if len(times) > k else None
    return {"first_tenth_per_s": rounded(first, 3), "last_tenth_per_s": rounded(last, 3),
            "last_over_first": rounded(last / first, 3) if first and last else None,
            "each_tenth_per_s": each_tenth(started, times)}


def each_tenth(started: float, times: list[float]) -> list[float]:
    """The rate of every tenth of the commitments, each from the commitment before it (the
    first from the start): where along the run the rate changes."""
    if len(times) < 10:
        return []
    bounds = [started] + [times[len(times) * i // 10 - 1] for i in range(1, 11)]
    counts = [len(times) * (i + 1) // 10 - len(times) * i // 10 for i in range(10)]
    return [rounded(rate(n, b - a), 3) for n, a, b in zip(counts, bounds, bounds[1:])]


def table(rows: list[tuple[str, object]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label:<{width}}  {show(value)}" for label, value in rows)


def show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
    return str(value)


def json_line(figures: dict) -> str:
    return json.dumps(figures, separators=(",", ":"), sort_keys=False)
