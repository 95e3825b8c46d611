"""bot/past_states.py describes a conversation exactly as Rasa does, turn after turn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActionReverted,
    ActiveLoop,
    BotUttered,
    Event,
    FollowupAction,
    SessionStarted,
    SlotSet,
    UserUtteranceReverted,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker

from bot import past_states

DOMAIN = Domain.load(Path(__file__).parents[2] / "domain.yml")
RULE_ONLY = {"rule_only_slots": ["identified"], "rule_only_loops": ["identify_form"]}
OPTIONS = [
    {},
    {"omit_unset_slots": True},
    {"ignore_rule_only_turns": True, "rule_only_data": RULE_ONLY},
    {"omit_unset_slots": True, "ignore_rule_only_turns": True, "rule_only_data": None},
]


def _user(text: str, intent: str, **entities: str) -> UserUttered:
    found = [{"entity": name, "value": value} for name, value in entities.items()]
    return UserUttered(text, {"name": intent, "confidence": 0.9}, found)


def _conversation() -> Iterator[Event]:
    """A session with a form, rule-only turns, a follow-up action and both kinds of revert."""
    yield ActionExecuted("action_session_start")
    yield SessionStarted()
    yield ActionExecuted("action_listen")
    yield _user("你好", "greet")
    yield ActionExecuted("action_greet", hide_rule_turn=True)
    yield BotUttered("您好")
    yield ActionExecuted("action_listen", hide_rule_turn=True)
    yield _user("我的积分", "points_balance")
    yield ActionExecuted("identify_form")
    yield ActiveLoop("identify_form")
    yield SlotSet("requested_slot", "identify_phone")
    yield ActionExecuted("action_listen")
    yield _user("13800000000", "inform", phone="13800000000")
    yield ActionExecuted("identify_form")
    yield SlotSet("identified", True)
    yield ActiveLoop(None)
    yield ActionExecuted("action_points_balance")
    yield ActionExecuted("action_listen")
    yield _user("嗯嗯", "affirm")
    yield UserUtteranceReverted()
    yield ActionExecuted("action_listen")
    yield _user("转人工", "request_human")
    yield FollowupAction("action_request_human")
    yield ActionExecuted("action_request_human")
    yield ActionExecuted("utter_goodbye")
    yield ActionReverted()
    yield ActionExecuted("action_listen")
    yield _user("谢谢", "thank")
    yield SessionStarted()
    yield ActionExecuted("action_listen")
    yield _user("再见", "goodbye")


@pytest.fixture(autouse=True)
def _installed() -> Iterator[None]:
    past_states.install()
    yield
    past_states.uninstall()


@pytest.mark.parametrize("options", OPTIONS)
def test_every_turn_is_described_as_rasa_describes_it(options: dict) -> None:
    tracker = DialogueStateTracker("s1", DOMAIN.slots)
    for event in _conversation():
        tracker.update(event)
        ours = DOMAIN.states_for_tracker_history(tracker, **options)
        for state in ours:  # Rasa's featurizer edits the states it gets
            state.get("user", {}).pop("intent", None)
        again = DOMAIN.states_for_tracker_history(tracker, **options)
        assert again == past_states._original(DOMAIN, tracker, **options)


def test_a_tracker_built_anew_from_the_same_events_is_described_the_same() -> None:
    tracker = DialogueStateTracker("s1", DOMAIN.slots)
    for event in _conversation():
        tracker.update(event)
        DOMAIN.states_for_tracker_history(tracker)
    anew = DialogueStateTracker.from_events("s1", list(tracker.events), DOMAIN.slots)
    assert DOMAIN.states_for_tracker_history(anew) == DOMAIN.states_for_tracker_history(tracker)
    assert DOMAIN.states_for_tracker_history(tracker) == past_states._original(DOMAIN, tracker)
