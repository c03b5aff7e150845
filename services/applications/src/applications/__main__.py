"""`python -m applications`: serve the HTTP API and the Kafka consumer in one process."""

import asyncio

import uvicorn


async def serve() -> None:
    # The app is assembled inside the running event loop: aiokafka's producer (created when the
    # Service is assembled) needs one.
    from applications.app import app, settings

    config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_config=None,
                            timeout_graceful_shutdown=10)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(serve())
