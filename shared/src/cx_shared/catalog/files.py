"""The catalog's committed files: docs/asyncapi.yaml, the packaged copy the services serve, and
docs/schemas/<name>.v<version>.json, the schema of every event version as first published.

Writing them refuses a backward-incompatible change to a committed version (evolution.py).
Run in the monorepo (it reads every service's handler table): `make catalog`.
"""

from __future__ import annotations

import importlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from cx_shared.catalog.document import build
from cx_shared.events import Event, all_event_classes
from cx_shared.events.grants import PaymentOrdered
from cx_shared.evolution import ADVICE, Breach, breaches
from cx_shared.topics import FINANCE_SYSTEM, SERVICES

PACKAGED = Path(__file__).with_name("asyncapi.json")
SCHEMA_ID = "https://clusterxchange.eu/schemas/"


def consumers() -> dict[str, set[type[Event]]]:
    """Who handles what: each service's handler table, and the partnership's finance system,
    which executes payment orders (README, Connecting an outside system)."""
    tables = {s: set(importlib.import_module(f"{s}.handlers").HANDLERS) for s in SERVICES}
    return tables | {FINANCE_SYSTEM: {PaymentOrdered}}


def snapshot(cls: type[Event]) -> dict[str, Any]:
    return {"$id": f"{SCHEMA_ID}{cls.name}.v{cls.version}.json", "x-ce-type": cls.ce_type(),
            **cls.model_json_schema()}


def snapshot_path(docs: Path, cls: type[Event]) -> Path:
    return docs / "schemas" / f"{cls.name}.v{cls.version}.json"


def expected(docs: Path, packaged: Path = PACKAGED) -> dict[Path, str]:
    """Every file `make catalog` writes, with the text it should hold today."""
    document = build(consumers(), version=metadata.version("cx-shared"))
    files = {docs / "asyncapi.yaml": _yaml(document), packaged: _json(document)}
    return files | {snapshot_path(docs, c): _json(snapshot(c)) for c in all_event_classes()}


def incompatible(docs: Path) -> list[Breach]:
    """Every committed version that its contract no longer honours."""
    found = []
    for cls in all_event_classes():
        path = snapshot_path(docs, cls)
        if path.exists():
            found += breaches(cls.ce_type(), json.loads(path.read_text(encoding="utf-8")), cls.model_json_schema())
    return found


def orphans(docs: Path) -> list[Path]:
    """Committed schemas of versions no contract defines any more."""
    known = {snapshot_path(docs, c) for c in all_event_classes()}
    return sorted(p for p in (docs / "schemas").glob("*.json") if p not in known)


def stale(docs: Path, packaged: Path = PACKAGED) -> list[Path]:
    return [path for path, text in expected(docs, packaged).items()
            if not path.exists() or path.read_text(encoding="utf-8") != text]


def write(docs: Path, packaged: Path = PACKAGED) -> list[Path]:
    """Write what changed; refuse (SystemExit) a backward-incompatible change to a committed version."""
    if found := incompatible(docs):
        raise SystemExit("\n".join(map(str, found)) + "\n" + ADVICE)
    written = []
    for path, text in expected(docs, packaged).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


class _Dumper(yaml.SafeDumper):
    """Multi-line descriptions as readable blocks."""


_Dumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def _yaml(document: dict[str, Any]) -> str:
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110)
