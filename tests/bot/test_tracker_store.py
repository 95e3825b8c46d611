from __future__ import annotations

from pathlib import Path
from typing import Any

from rasa.core.brokers.broker import EventBroker
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, UserUttered
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


def _store(tmp_path: Path, domain: Domain | None = None, **kwargs: Any) -> CareSQLTrackerStore:
    return CareSQLTrackerStore(domain or Domain.empty(), db=str(tmp_path / "t.db"), **kwargs)


async def _saved(store: CareSQLTrackerStore, sender_id: str, *texts: str) -> DialogueStateTracker:
    tracker = DialogueStateTracker.from_events(sender_id, [ActionExecuted("action_listen")])
    for said in texts:
        tracker.update(UserUttered(said, {"name": "greet"}))
    await store.save(tracker)
    kept = await store.retrieve(sender_id)
    assert kept is not None
    return kept


def _texts(tracker: DialogueStateTracker | None) -> list[str | None]:
    assert tracker is not None
    return [event.text for event in tracker.events if isinstance(event, UserUttered)]


async def test_the_tracker_a_turn_saved_is_handed_to_the_next_turn(tmp_path: Path) -> None:
    store = _store(tmp_path)
    tracker = await _saved(store, "s1", "你好")
    tracker.update(BotUttered("您好"))
    await store.save(tracker)

    assert await store.retrieve("s1") is tracker
    fresh = await _store(tmp_path).retrieve("s1")
    assert fresh is not None and [e.type_name for e in fresh.events] == ["action", "user", "bot"]


async def test_a_turn_stored_by_another_replica_is_read_again(tmp_path: Path) -> None:
    here, there = _store(tmp_path), _store(tmp_path)
    kept = await _saved(here, "s1", "你好")
    elsewhere = await there.retrieve("s1")
    assert elsewhere is not None
    elsewhere.update(UserUttered("我的订单", {"name": "order_status"}))
    await there.save(elsewhere)

    again = await here.retrieve("s1")
    assert again is not kept and _texts(again) == ["你好", "我的订单"]
    again.update(UserUttered("谢谢", {"name": "thanks"}))
    await here.save(again)
    assert _texts(await _store(tmp_path).retrieve("s1")) == ["你好", "我的订单", "谢谢"]


async def test_a_tracker_changed_but_not_saved_is_read_again(tmp_path: Path) -> None:
    store = _store(tmp_path)
    kept = await _saved(store, "s1", "你好")
    kept.update(UserUttered("没存下的一句", {"name": "greet"}))  # the turn failed before saving

    assert _texts(await store.retrieve("s1")) == ["你好"]


async def test_after_a_session_restart_only_the_new_session_is_handed_out(tmp_path: Path) -> None:
    store = _store(tmp_path)
    kept = await _saved(store, "s1", "上次的话")
    kept.update(SessionStarted(timestamp=kept.events[-1].timestamp + 1))
    kept.update(UserUttered("新会话", {"name": "greet"}, timestamp=kept.events[-1].timestamp + 1))
    await store.save(kept)

    handed_out = await store.retrieve("s1")
    read = await _store(tmp_path).retrieve("s1")
    assert _texts(handed_out) == _texts(read) == ["新会话"]
    assert handed_out is not None and read is not None
    assert [e.as_dict() for e in handed_out.events] == [e.as_dict() for e in read.events]


async def test_an_erased_conversation_is_gone_for_the_replica_that_kept_it(tmp_path: Path) -> None:
    here = _store(tmp_path)
    await _saved(here, "s1", "你好")
    assert _store(tmp_path).erase("s1") == 2

    assert await here.retrieve("s1") is None


async def test_a_new_model_reads_the_tracker_with_its_own_slots(tmp_path: Path) -> None:
    store = _store(tmp_path)
    kept = await _saved(store, "s1", "你好")
    tier = {"type": "any", "mappings": [{"type": "custom"}]}
    store.domain = Domain.from_dict({"slots": {"tier": tier}})

    again = await store.retrieve("s1")
    assert again is not kept and again is not None and "tier" in again.slots


async def test_only_the_most_recent_conversations_are_kept(tmp_path: Path) -> None:
    store = _store(tmp_path, kept_conversations=2)
    first = await _saved(store, "s1", "一")
    await _saved(store, "s2", "二")
    third = await _saved(store, "s3", "三")

    assert await store.retrieve("s3") is third
    assert await store.retrieve("s1") is not first
