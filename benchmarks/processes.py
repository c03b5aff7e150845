"""The processes a benchmark starts itself (the four services, the baseline's hops): started
with their output in a log file, and every one of them stopped at the end, whatever happens."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable


class Processes:
    def __init__(self, logs: Path):
        self.logs = logs
        self.running: dict[str, subprocess.Popen] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = self.log_of(name).open("wb")
        # Each process gets its own broker credentials in env, not the others' passwords the run holds.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_PASSWORD_")}
        process = subprocess.Popen([PYTHON, *args], env={**inherited, **env}, cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
        log.close()  # the child holds its own descriptor
        self.running[name] = process
        return process

    def log_of(self, name: str) -> Path:
        return self.logs / f"bench-{name}.log"

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.running.items() if p.poll() is None}

    def check_alive(self) -> None:
        for name, process in self.running.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} stopped (exit {process.returncode}); see {self.log_of(name)}:\n"
                                   + tail(self.log_of(name)))

    def stop(self, names: list[str] | None = None, grace: float = 20) -> None:
        """SIGTERM (the services shut down gracefully on it), then SIGKILL what is left."""
        chosen = {n: p for n, p in self.running.items() if names is None or n in names}
        for process in chosen.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in chosen.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for name in chosen:
            self.running.pop(name, None)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def wait_ready(processes: Processes, urls: dict[str, str], timeout: float = 180) -> None:
    """Every service answers /health/ready (its database and broker reachable)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as client:
        for name, url in urls.items():
            while True:
                processes.check_alive()
                try:
                    if (await client.get(f"{url}/health/ready")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} not ready after {timeout:.0f}s; see {processes.log_of(name)}")
                await asyncio.sleep(0.5)
