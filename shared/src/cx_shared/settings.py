"""Settings from the environment, the same names in every service."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cx_shared.topics import DEAD_LETTER_RETENTION_MS, UNLIMITED, consumer_group, service_source


# Published here, so it protects nothing: accepted only for local development (see refusals()).
DEVELOPMENT_SECRET = "local-development-secret-change-me"
KNOWN_SECRETS = frozenset({DEVELOPMENT_SECRET, "change-me-in-production", "change-me", "secret", "changeme"})
MIN_SECRET_BYTES = 32


def loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class KafkaSettings(BaseSettings):
    """How to reach the broker, and as whom: every Kafka client is built from these
    (cx_shared.kafka.client_options)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    # No default that works without credentials: PLAINTEXT must be asked for, and only on loopback.
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "SASL_SSL"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = "SCRAM-SHA-512"
    kafka_username: str = ""
    kafka_password: SecretStr = SecretStr("")
    # SASL_SSL: the CA that signed the broker's certificate (empty: the system's trust store).
    kafka_ssl_cafile: str = ""

    def kafka_refusals(self) -> list[str]:
        """Why a client with these settings must not connect."""
        if self.kafka_security_protocol == "PLAINTEXT":
            hosts = [server.rsplit(":", 1)[0].strip("[]") for server in self.kafka_bootstrap_servers.split(",")]
            if not all(loopback(host) for host in hosts):
                return ["KAFKA_SECURITY_PROTOCOL=PLAINTEXT lets anyone who reaches the broker write events: "
                        "use SASL_SSL (or SASL_PLAINTEXT on a private network); PLAINTEXT is for a loopback broker"]
            return []
        if not self.kafka_username or not self.kafka_password.get_secret_value():
            return [f"KAFKA_USERNAME and KAFKA_PASSWORD are required with "
                    f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"]
        return []


class ServiceSettings(KafkaSettings):
    service_name: str = "service"
    mongodb_url: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = ""
    # Suffix of topic and group names, so test runs sharing one broker do not see each other.
    topic_namespace: str = ""
    topic_partitions: int = 3
    topic_replication: int = 1
    # How long topics created at deployment keep events (-1: without time limit, for replays).
    topic_retention_ms: int = UNLIMITED
    # How long the dead-letter topic keeps poison messages (copies of events, personal data included).
    dead_letter_retention_ms: int = DEAD_LETTER_RETENTION_MS
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    jwt_secret: str = DEVELOPMENT_SECRET
    jwt_issuer: str = "clusterxchange-local"
    # An identity provider's key set: its RS256/ES256 tokens (issuer JWT_ISSUER) are verified against it.
    jwt_jwks_url: str = ""
    # The key set is fetched from the identity provider at most once per this many seconds (an
    # unknown `kid` included): a newly rotated key may wait this long.
    jwt_jwks_refetch_seconds: float = Field(60.0, gt=0)
    dev_tokens: bool = False
    # Rate limits (cx_shared.rate_limit), in `limits`' notation ("20/second;600/minute"; empty: none):
    # writes per principal (token subject), and writes and sign-in-free requests per client address.
    # Per process: with N replicas a client may reach N times these. The defaults stop a flood, not
    # a busy integration, nor the test suite's or `make bench`'s bursts (all from one address).
    rate_limit_principal_writes: str = "1200/minute"
    rate_limit_per_address: str = "3000/minute"
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

    @field_validator("rate_limit_principal_writes", "rate_limit_per_address")
    @classmethod
    def _rates(cls, value: str, info) -> str:
        from cx_shared.rate_limit import rates
        try:
            rates(value)
        except ValueError as exc:
            raise ValueError(f"{info.field_name.upper()} must be rates such as '20/second;600/minute' "
                             f"(or empty: no limit): {exc}") from exc
        return value

    @field_validator("topic_retention_ms", "dead_letter_retention_ms")
    @classmethod
    def _retention(cls, value: int, info) -> int:
        if value != UNLIMITED and value < 1:
            raise ValueError(f"{info.field_name.upper()} must be -1 (keep records without time limit) "
                             "or a positive number of milliseconds")
        return value

    @model_validator(mode="after")
    def _default_database(self) -> ServiceSettings:
        if not self.mongodb_database:
            self.mongodb_database = f"cx_{self.service_name}"
        return self

    def refusals(self) -> list[str]:
        """Why this service must not start: development tokens (anyone may mint any role with
        them) on an address others reach; a missing, short or published token secret, unless it
        is local development (development tokens on, listening on loopback only)."""
        refusals = []
        local = self.dev_tokens and loopback(self.http_host)
        weak = self.jwt_secret in KNOWN_SECRETS or len(self.jwt_secret.encode()) < MIN_SECRET_BYTES
        if weak and not local:
            refusals.append(f"JWT_SECRET must be a secret of at least {MIN_SECRET_BYTES} bytes that is not published "
                            "(only local development, DEV_TOKENS=true on a loopback HTTP_HOST, may use the default)")
        if self.dev_tokens and not local:
            refusals.append(f"DEV_TOKENS=true lets anyone who reaches the service mint a token of any role: it needs "
                            f"a loopback HTTP_HOST (127.0.0.1, ::1 or localhost), not HTTP_HOST={self.http_host}")
        return refusals

    @property
    def consumer_group(self) -> str:
        return consumer_group(self.service_name, self.topic_namespace)

    @property
    def source(self) -> str:
        """The CloudEvents source of everything this service emits."""
        return service_source(self.service_name)
