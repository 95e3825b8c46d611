"""The event-type table answers exactly as Rasa's class-tree walk."""

from __future__ import annotations

import pytest
from rasa.shared.core import events
from rasa.shared.utils.common import all_subclasses

from bot import event_lookup


def test_every_event_type_resolves_to_the_class_rasa_finds() -> None:
    names = {cls.type_name for cls in all_subclasses(events.Event)}
    assert len(names) > 20
    for name in names:
        assert event_lookup.resolve_by_type(name) is event_lookup._original(name)


def test_unknown_names_behave_as_in_rasa() -> None:
    assert event_lookup.resolve_by_type("topic") is None
    assert event_lookup.resolve_by_type("no such event", events.UserUttered) is events.UserUttered
    with pytest.raises(ValueError, match="Unknown event name"):
        event_lookup.resolve_by_type("no such event")


def test_a_class_imported_later_is_found() -> None:
    event_lookup._refresh()

    class LateEvent(events.SlotSet):
        type_name = "carebot_late_event_for_test"

    assert event_lookup.resolve_by_type("carebot_late_event_for_test") is LateEvent


def test_installed_stored_events_deserialise_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events.Event, "resolve_by_type", events.Event.__dict__["resolve_by_type"])
    event_lookup.install()
    stored = [events.SlotSet("order_id", "DD1").as_dict(), events.ActionExecuted("x").as_dict()]
    restored = events.deserialise_events(stored)
    assert restored == [events.SlotSet("order_id", "DD1"), events.ActionExecuted("x")]
