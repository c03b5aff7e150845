"""`python -m notifications.rebuild --configuration-from DATABASE [--drop]`: the read models, mail
queue and reminders rebuilt from the topics (cx_shared.rebuild), sending nothing.

The replay is the live handling without the webhook offer: a delivery has no event to say
whether it was made, so none is made again and the rebuilt database has no deliveries (their
history stays in the old database). An email is queued as live, then ends as its EmailSent or
EmailFailed on our own topic says; one with neither was not sent live either and goes when the
service starts (its claim lapses). The mailer, dispatcher and reminder loops are not run.
Subscriptions, staff, opt-outs, unsubscribe tokens, confirmed contact addresses and confirmation
tokens are entered over HTTP and carried by no event: they are copied from the live database
first, since they decide who gets what (an address confirmed live stays confirmed).
"""

from cx_shared.consumer import Delivery
from cx_shared.events import Event
from cx_shared.events.notifications import EmailFailed, EmailSent
from cx_shared.rebuild import Replay, main

from notifications.handlers import HANDLERS, on_event
from notifications.settings import Settings
from notifications.storage import OUTBOX_COLLECTIONS, Storage

CONFIGURATION = ("subscriptions", "subscription_scopes", "staff", "opt_outs", "unsubscribe_tokens",
                 "confirmed_addresses", "confirmation_tokens")


async def on_replayed_event(event: Event, delivery: Delivery, storage: Storage) -> None:
    storage.replaying = True  # an address is confirmed as of each event's time, as it was live
    await on_event(event, delivery, storage, offer=False)


async def on_email_recorded(event: EmailSent, delivery: Delivery, storage: Storage) -> None:
    await on_replayed_event(event, delivery, storage)
    await storage.email_recorded(delivery.envelope)


REPLAYED = {**{cls: on_replayed_event for cls in HANDLERS}, EmailSent: on_email_recorded,
            EmailFailed: on_email_recorded}
REPLAY = Replay(Settings, REPLAYED, Storage, OUTBOX_COLLECTIONS, configuration=CONFIGURATION, key_ring=True)

if __name__ == "__main__":
    main(REPLAY)
