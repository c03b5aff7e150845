"""Waits until the Kafka broker answers a metadata request (an open port is not enough), as the
principal the KAFKA_* settings name (the admin, from deploy/infra.sh)."""

import asyncio
import sys
import time

from cx_shared.kafka import admin_client
from cx_shared.settings import KafkaSettings


async def main(bootstrap: str, timeout: float) -> int:
    kafka = KafkaSettings(kafka_bootstrap_servers=bootstrap)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with admin_client(kafka, request_timeout_ms=3000) as admin:
                await admin.list_topics()
            return 0
        except Exception:
            await asyncio.sleep(0.5)
    print(f"kafka at {bootstrap} did not answer within {timeout}s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 90)))
