"""`python -m grants.rebuild [--drop]`: budgets, commitments and the ledger rebuilt from the
topics grants consumes (cx_shared.rebuild); see the README for what its own topic would add."""

from cx_shared.rebuild import Replay, main

from grants.handlers import HANDLERS
from grants.settings import Settings
from grants.storage import OUTBOX_COLLECTIONS, Storage

REPLAY = Replay(Settings, HANDLERS, Storage, OUTBOX_COLLECTIONS)

if __name__ == "__main__":
    main(REPLAY)
