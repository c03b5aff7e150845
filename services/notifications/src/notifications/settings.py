"""Settings of the notifications service (environment variables; shared names in ServiceSettings)."""

from cx_shared.settings import ServiceSettings

from notifications.targets import networks


class Settings(ServiceSettings):
    service_name: str = "notifications"
    http_port: int = 8004
    public_base_url: str = "http://127.0.0.1:8004"  # where unsubscribe links point

    # SMTP: the local sink in local mode; a relay with STARTTLS and credentials in production.
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_use_tls: bool = False  # implicit TLS (port 465) instead of STARTTLS
    smtp_timeout_seconds: float = 30.0
    mail_from: str = "ClusterXchange <no-reply@clusterxchange.eu>"

    # Mail queue: each email is claimed with a lease, sent, then recorded.
    mail_poll_seconds: float = 5.0
    mail_concurrency: int = 2
    mail_lease_seconds: float = 60.0
    mail_max_attempts: int = 6
    mail_backoff_seconds: float = 5.0
    mail_backoff_max_seconds: float = 3600.0
    # Test hook: a pause between the SMTP server's acceptance and our record of it, so a test
    # can kill the process exactly in the window that makes exactly-once hard.
    mail_pause_after_send_seconds: float = 0.0

    # Webhooks.
    webhook_poll_seconds: float = 5.0
    webhook_concurrency: int = 4
    webhook_timeout_seconds: float = 10.0
    webhook_lease_seconds: float = 60.0
    webhook_max_attempts: int = 8
    webhook_backoff_seconds: float = 30.0
    webhook_backoff_max_seconds: float = 6 * 3600.0
    # A subscription whose deliveries keep failing for this long (and one exhausted its retries) is disabled.
    webhook_disable_after_seconds: float = 3 * 24 * 3600.0
    # Targets must be https on a global address, resolved and checked at every delivery. Plain
    # http is for local mode and tests only; the allow-list (comma-separated CIDRs, e.g.
    # "127.0.0.1/32" for a receiver on this machine) opens non-global networks the operator trusts.
    webhook_allow_http: bool = False
    webhook_allowed_networks: str = ""
    webhook_resolve_timeout_seconds: float = 5.0
    # Who hears of an event is looked up in memory: a change made through this process applies
    # at once; one made through another replica is heard here within this many seconds.
    webhook_routes_refresh_seconds: float = 1.0
    # Read models that may change (contacts, staff, calls, opt-outs) are trusted this long after a
    # read (notifications/memory.py Fresh); 0 reads them for every event.
    read_model_memory_seconds: float = 1.0
    # A subscription stops (suspended) when its owner has not called its management routes with a
    # token that still holds his role in its partnerships for this long (roles live in the identity
    # provider: each call is where the service sees them); he enables it again himself.
    webhook_owner_check_days: float = 90.0
    # After a rotation the previous secret still signs deliveries for this long (two signatures).
    webhook_secret_grace_seconds: float = 24 * 3600.0

    # Reminders (days, per programme practice; configuration, not code).
    reminder_poll_seconds: float = 30.0
    agreement_reminder_days: int = 7
    starting_soon_days: int = 7
    report_due_days: int = 1
    # Retention of personal data (README, "Record of processing"): an email, a webhook delivery or an
    # event parked for an application that never came is deleted this many days after it ended.
    mail_log_retention_days: float = 180.0
    webhook_delivery_retention_days: float = 30.0
    parked_event_retention_days: float = 30.0
    retention_sweep_seconds: float = 3600.0
    # Time travel for tests and demos: the service believes "now" is this far ahead.
    clock_offset_seconds: float = 0.0

    @property
    def webhook_owner_check_seconds(self) -> float:
        return self.webhook_owner_check_days * 24 * 3600

    def refusals(self) -> list[str]:
        try:
            networks(self.webhook_allowed_networks)
        except ValueError as exc:
            return [*super().refusals(), f"WEBHOOK_ALLOWED_NETWORKS: {exc}"]
        return super().refusals()
