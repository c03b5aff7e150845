"""Settings from the environment, the same names in every service."""

from __future__ import annotations

import ipaddress

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


# Published here, so it protects nothing: accepted only for local development (see refusals()).
DEVELOPMENT_SECRET = "local-development-secret-change-me"
KNOWN_SECRETS = frozenset({DEVELOPMENT_SECRET, "change-me-in-production", "change-me", "secret", "changeme"})
MIN_SECRET_BYTES = 32


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


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
    jwt_secret: str = DEVELOPMENT_SECRET
    jwt_issuer: str = "clusterxchange-local"
    # An identity provider's key set: its RS256/ES256 tokens (issuer JWT_ISSUER) are verified against it.
    jwt_jwks_url: str = ""
    dev_tokens: bool = False
    # Request bodies above this are refused (413) before they are parsed (cx_shared.http.BodyLimit).
    max_body_bytes: int = 64 * 1024
    # The relay is woken by every local write; the poll only recovers what a crash left behind.
    outbox_poll_seconds: float = 5.0
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

    def refusals(self) -> list[str]:
        """Why this service must not start: a missing, short or published token secret, unless
        it is local development (development tokens on, listening on loopback only)."""
        weak = self.jwt_secret in KNOWN_SECRETS or len(self.jwt_secret.encode()) < MIN_SECRET_BYTES
        if weak and not (self.dev_tokens and loopback(self.http_host)):
            return [f"JWT_SECRET must be a secret of at least {MIN_SECRET_BYTES} bytes that is not published "
                    "(only local development, DEV_TOKENS=true on a loopback HTTP_HOST, may use the default)"]
        return []

    @property
    def consumer_group(self) -> str:
        return f"{self.topic_namespace}{self.service_name}"

    @property
    def source(self) -> str:
        """The CloudEvents source of everything this service emits."""
        return f"/clusterxchange/{self.service_name}"
