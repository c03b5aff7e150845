"""Settings of the applications service (environment variables; shared names in ServiceSettings)."""

from cx_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "applications"
    http_port: int = 8001
    # Follow-up: "now" for report deadlines is real time plus this offset (tests and demos let days pass).
    clock_offset_seconds: float = 0.0
    overdue_poll_seconds: float = 60.0  # how often overdue reports are looked for
