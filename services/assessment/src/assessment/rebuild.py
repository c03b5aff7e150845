"""`python -m assessment.rebuild [--drop]`: the call books rebuilt from the topics assessment
consumes (cx_shared.rebuild); see the README for what its own topic would add."""

from cx_shared.rebuild import Replay, main

from assessment.handlers import HANDLERS
from assessment.settings import Settings
from assessment.storage import OUTBOX_COLLECTIONS, Storage

REPLAY = Replay(Settings, HANDLERS, Storage, OUTBOX_COLLECTIONS)

if __name__ == "__main__":
    main(REPLAY)
