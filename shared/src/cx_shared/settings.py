"""Settings from the environment, the same names in every service."""

from __future__ import annotations

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    service_name: str = "service"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    mongodb_url: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = ""
    # Prefix for topic names, so test runs sharing one broker do not see each other.
    topic_namespace: str = ""
    topic_partitions: int = 3
    topic_replication: int = 1
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    jwt_secret: str = "local-development-secret-change-me"
    jwt_issuer: str = "clusterxchange-local"
    dev_tokens: bool = False
    # The relay is woken by every local write; the poll only recovers what a crash left behind.
    outbox_poll_seconds: float = 2.0
    # false: the relay relies on its poll alone (the crash tests use it to hold an event back).
    outbox_wake_up: bool = True
    consumer_max_attempts: int = 5
    # Where to append the shape of every database filter (tests check each is served by an index).
    query_audit_file: str = ""
    # Records taken per batch, and keys handled at the same time within one.
    consumer_batch_records: int = 200
    consumer_concurrency: int = 32
    consumer_backoff_seconds: float = 0.2
    consumer_backoff_max_seconds: float = 30.0

    @model_validator(mode="after")
    def _default_database(self) -> ServiceSettings:
        if not self.mongodb_database:
            self.mongodb_database = f"cx_{self.service_name}"
        return self

    @property
    def consumer_group(self) -> str:
        return f"{self.topic_namespace}{self.service_name}"

    @property
    def source(self) -> str:
        """The CloudEvents source of everything this service emits."""
        return f"/clusterxchange/{self.service_name}"
