"""Settings of the grants service (environment variables; shared names in ServiceSettings)."""

from cx_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "grants"
    http_port: int = 8003
