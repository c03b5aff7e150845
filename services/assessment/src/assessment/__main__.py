"""`python -m assessment`: serve the HTTP API and the Kafka consumer in one process."""

import uvicorn

from assessment.app import app, settings

if __name__ == "__main__":
    uvicorn.run(app, host=settings.http_host, port=settings.http_port, log_config=None,
                timeout_graceful_shutdown=10)
