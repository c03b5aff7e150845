"""`python -m applications.rebuild [--drop]`: the read model rebuilt from the topics
(cx_shared.rebuild). The service's own events bring back what HTTP requests made (its handlers
`record` them), the documents they create come first, then the lifecycle. Idempotency keys
survive: an application submitted with a key has an id derived from it."""

from cx_shared.rebuild import Replay, main

from applications.handlers import CREATIONS, HANDLERS
from applications.settings import Settings
from applications.storage import OUTBOX_COLLECTIONS, Storage

REPLAY = Replay(Settings, HANDLERS, Storage, OUTBOX_COLLECTIONS, first=CREATIONS, key_ring=True)

if __name__ == "__main__":
    main(REPLAY)
