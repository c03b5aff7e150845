"""`python -m cx_shared.catalog [--check] [docs]`: write the catalog and the event schemas into
docs/ (default: ./docs) and the packaged copy, or with --check only say what is out of date."""

from __future__ import annotations

import sys
from pathlib import Path

from cx_shared.catalog.files import incompatible, orphans, stale, write
from cx_shared.evolution import ADVICE


def main(argv: list[str]) -> int:
    check = "--check" in argv
    docs = Path(next((a for a in argv if not a.startswith("--")), "docs"))
    for orphan in orphans(docs):
        print(f"{orphan}: no contract defines this version any more; delete it if it is retired", file=sys.stderr)
    if not check:
        for path in write(docs):
            print(f"wrote {path}")
        return 0
    problems = [str(b) for b in incompatible(docs)]
    problems += [f"{p}: out of date, run `make catalog`" for p in stale(docs)] if not problems else [ADVICE]
    print("\n".join(problems), file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
