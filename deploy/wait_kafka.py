"""Waits until the Kafka broker answers a metadata request (an open port is not enough)."""

import asyncio
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient


async def main(bootstrap: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return 0
        except Exception:
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    print(f"kafka at {bootstrap} did not answer within {timeout}s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 90)))
