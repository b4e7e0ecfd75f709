"""Journeys that have run on the segments' demo store, for the journeys pages and the 360.

The segment presets are saved and five of the example journeys published in the same
instant (the demo's pinned clock, 2026-01-01 00:00 in Shanghai), so the segment
enters count as triggers. The worker's runtime and dispatcher then run three times:
at 00:00 (quiet hours defer every marketing message), at 08:00 (they go out to a
real webhook receiver, or are suppressed for consent) and eight days later, when
the win-back's wait for an order has timed out and its three coupons run out (the
rest of its runs fail with the empty pool). Statuses cover every kind: two active
journeys, a paused one, an archived one and a draft.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from perennial.channels.setup import guardrail_policy
from perennial.channels.webhook import WebhookChannel
from perennial.config import Settings
from perennial.journeys.coupons import load_codes
from perennial.journeys.customers import WarehouseCustomers
from perennial.journeys.dispatch import Dispatcher
from perennial.journeys.loading import load_journey
from perennial.journeys.runtime import JourneyRuntime
from perennial.journeys.service import JourneyService
from perennial.segments.documents import PRESETS_FILE, load_segment_document
from perennial.segments.service import SegmentService
from tests.segments.conftest import CLOCK, SegmentStore
from tests.sinks import webhook_sink

EXAMPLES = Path(__file__).parents[2] / "examples" / "journeys"
EDUCATION = "education-dormant-learners"
WIN_BACK = "dormant-win-back"
CALL_BACK = "high-value-callback"
REPLENISHMENT = "replenishment-reminder"
WELCOME = "new-customer-welcome"
PUBLISHED = (EDUCATION, WIN_BACK, CALL_BACK, REPLENISHMENT)
STATUSES = {
    EDUCATION: "active",
    WIN_BACK: "active",
    CALL_BACK: "paused",
    REPLENISHMENT: "archived",
    WELCOME: "draft",
}
WIN_BACK_CODES = ("WB15-0001", "WB15-0002", "WB15-0003")
TICKS = (CLOCK, CLOCK + timedelta(hours=8), CLOCK + timedelta(days=8, hours=9))
"""00:00, 08:00 and eight days later at 09:00, Shanghai time."""
SECRET = "web-journeys"


def seed_journeys(segment_store: SegmentStore, home: Path) -> Settings:
    """A fresh operational store under ``home`` with the journeys above run; its settings."""
    settings = segment_store.settings(home, signing_secret=SECRET)
    service = JourneyService.migrated(settings)
    SegmentService(settings, service.operational).save_many(
        load_segment_document(PRESETS_FILE).segments, user="test"
    )
    for name in PUBLISHED:
        service.publish(load_journey(EXAMPLES / f"{name}.yaml"), actor="test")
    service.save_draft(load_journey(EXAMPLES / f"{WELCOME}.yaml"), actor="test")
    with service.operational.begin() as connection:
        load_codes(connection, "win-back-15", WIN_BACK_CODES, CLOCK)
    with webhook_sink() as sink:
        channel = WebhookChannel(secret=SECRET, allowed_hosts=["127.0.0.1"], url=sink.url)
        customers = WarehouseCustomers(settings, service.operational)
        runtime = JourneyRuntime(settings, service.operational, customers)
        channels = {"app_push": channel, "email": channel, "sms": channel}
        dispatcher = Dispatcher(service.operational, channels, guardrail_policy(settings))
        try:
            for now in TICKS:
                runtime.run_until_idle(now)
                dispatcher.run_until_idle(now)
        finally:
            dispatcher.close()
            channel.close()
            customers.close()
        assert sink.received, "some messages went out"
    service.change_status(CALL_BACK, "pause", actor="test")
    service.change_status(REPLENISHMENT, "archive", actor="test")
    service.operational.dispose()
    return settings
