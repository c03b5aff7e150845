"""`python -m notifications`: serve the HTTP API and the Kafka consumer in one process."""

import asyncio

import uvicorn


async def main() -> None:
    # The app is built inside the running loop, so nothing created at import time can bind
    # another loop (an early shared Publisher built its aiokafka producer in __init__).
    from notifications.app import app, settings

    config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_config=None,
                            timeout_graceful_shutdown=10)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(main())
