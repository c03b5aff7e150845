"""Event contracts: every event that crosses a service boundary is a versioned pydantic model.

Each producing service owns one module here (applications, assessment, grants,
notifications). A contract's CloudEvents type is ``eu.clusterxchange.<name>.v<version>``;
search a class name to find its producer and its consumers.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from cx_shared.topics import Topic

TYPE_PREFIX = "eu.clusterxchange."

_REGISTRY: dict[str, type[Event]] = {}


class Event(BaseModel):
    """Base of every integration event. Unknown fields are ignored so producers can add
    optional fields without breaking older consumers; a breaking change is a new version."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: ClassVar[str]
    version: ClassVar[int]
    topic: ClassVar[Topic]

    def __init_subclass__(cls, *, name: str | None = None, version: int = 1, topic: Topic | None = None, **kw):
        super().__init_subclass__(**kw)
        if name is None:
            return
        cls.name, cls.version, cls.topic = name, version, topic
        ce_type = cls.ce_type()
        if ce_type in _REGISTRY:
            raise TypeError(f"event type {ce_type} is defined twice")
        _REGISTRY[ce_type] = cls

    @classmethod
    def ce_type(cls) -> str:
        return f"{TYPE_PREFIX}{cls.name}.v{cls.version}"


def event_class(ce_type: str) -> type[Event] | None:
    """The contract for a CloudEvents type, or None for a type this build does not know."""
    _load_contracts()
    return _REGISTRY.get(ce_type)


def all_event_classes() -> list[type[Event]]:
    _load_contracts()
    return list(_REGISTRY.values())


def _load_contracts() -> None:
    from cx_shared.events import applications, assessment, grants, notifications  # noqa: F401
