"""`python -m assessment`: serve the HTTP API and the Kafka consumer in one process."""

import asyncio

import uvicorn


async def serve() -> None:
    # Assembled inside the running event loop: the shared Publisher creates aiokafka's
    # producer when the Service is built, and aiokafka needs a running loop for that.
    from assessment.app import app, settings

    config = uvicorn.Config(app, host=settings.http_host, port=settings.http_port, log_config=None,
                            timeout_graceful_shutdown=10)
    await uvicorn.Server(config).serve()


if __name__ == "__main__":
    asyncio.run(serve())
