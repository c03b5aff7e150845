"""Runs a service as a real process (uvicorn), as in production, for integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServiceProcess:
    def __init__(self, name: str, env: dict[str, str], log_dir: Path):
        self.name, self.env, self.log_dir = name, dict(env), log_dir
        self.port = int(self.env.setdefault("HTTP_PORT", str(free_port())))
        if name == "notifications":  # its links (unsubscribe, confirmation) point at this process
            self.env.setdefault("PUBLIC_BASE_URL", f"http://127.0.0.1:{self.port}")
        self.proc: subprocess.Popen | None = None
        self._log_start = 0  # where this run's lines begin in the (appended) log file

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0, **overrides: str) -> ServiceProcess:
        # Not the other principals' broker passwords the test run holds: only what self.env gives.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("KAFKA_PASSWORD_")}
        env = {**inherited, **self.env, **overrides}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self._log_start = log.tell()
        self.proc = subprocess.Popen([sys.executable, "-m", self.name], env=env, stdout=log, stderr=subprocess.STDOUT)
        self.wait_ready(timeout)
        return self

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}-{self.port}.log"

    def log_records(self) -> list[dict]:
        """The JSON log records this process wrote since it was last started (LOG_JSON=true)."""
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            lines = log.read().decode(errors="replace").splitlines()
        return [record for line in lines if (record := _json_object(line)) is not None]

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log_dir}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {self.log_dir}")

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def _json_object(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:  # a line some library printed as text
        return None
    return record if isinstance(record, dict) else None
