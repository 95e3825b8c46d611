from __future__ import annotations

from pathlib import Path
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.tracker_store import CareSQLTrackerStore


class Collecting(EventBroker):
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.published.append(event)


async def test_each_event_is_stored_and_published_once(tmp_path: Path) -> None:
    broker = Collecting()
    domain = Domain.empty()
    store = CareSQLTrackerStore(domain, db=str(tmp_path / "t.db"), event_broker=broker)
    tracker = DialogueStateTracker.from_events(
        "s1", [ActionExecuted("action_listen"), UserUttered("你好", {"name": "greet"})]
    )
    await store.save(tracker)
    tracker.update(BotUttered("您好"))
    await store.save(tracker)
    await store.save(tracker)  # nothing new

    assert [e["event"] for e in broker.published] == ["action", "user", "bot"]
    assert {e["sender_id"] for e in broker.published} == {"s1"}
    stored = await store.retrieve("s1")
    assert stored is not None and [e.type_name for e in stored.events] == [
        "action",
        "user",
        "bot",
    ]
