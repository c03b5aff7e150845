"""`python -m notifications`: serve the HTTP API and the Kafka consumer in one process."""

from cx_shared.service import serve

from notifications.app import app, settings

if __name__ == "__main__":
    serve(app, settings)
