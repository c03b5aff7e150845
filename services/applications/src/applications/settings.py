"""Settings of the applications service (environment variables; shared names in ServiceSettings)."""

from cx_shared.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "applications"
    http_port: int = 8001
