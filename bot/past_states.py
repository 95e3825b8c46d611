"""A conversation's dialogue states described once, not again for every prediction.

Rasa's rule and memoization policies see the conversation as one state per action taken
(`Domain.states_for_tracker_history`): for every prediction of a turn (2-4 per turn, each policy,
the rule policy twice) Rasa replays every event since the session start into a fresh tracker
and describes it at each action. The work is the same each time and grows with the
conversation: about a quarter of the Rasa server's time under load, and why turn 50 cost more
than turn 1 (docs/benchmarks.md, the profile).

Here the states are kept for the tracker (while it lives) with the replayed tracker they were
read from, and the next call goes on from there when the events Rasa applies still begin with
the ones already described (the same objects: nothing reverted or undone since); otherwise it
starts over, as Rasa does. Each state depends only on the events before it, so the list is the
one Rasa computes (tests/bot/test_past_states.py compares them). Callers get their own copies
of the states: Rasa's featurizer edits them in place.

Installed in the serving Rasa process only (bot/rasa_main.py), not for training, where
thousands of short-lived trackers gain nothing from it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from typing import Any

from rasa.shared.core import constants
from rasa.shared.core.domain import Domain, State
from rasa.shared.core.events import ActionExecuted, Event
from rasa.shared.core.trackers import DialogueStateTracker

_original = Domain.states_for_tracker_history
# Progress per live tracker (by id; a tracker is not hashable), dropped when it is collected.
_kept: dict[int, dict[tuple[bool, bool], _Progress]] = {}


@dataclass
class _Progress:
    """How far a tracker's events have been described, with one set of options."""

    domain: Domain
    rule_only_data: dict[str, Any] | None
    replay: DialogueStateTracker  # a fresh tracker with `applied` applied
    applied: list[Event] = field(default_factory=list)
    states: list[State] = field(default_factory=list)  # one per action among `applied`
    last_ml_action: Any = None
    turn_was_hidden: bool = False
    now: list[State] | None = None  # the state after all of `applied` (none if hidden)

    def continues(self, applied: list[Event], domain: Domain, rule_only_data: Any) -> bool:
        return (
            domain is self.domain
            and rule_only_data is self.rule_only_data
            and len(applied) >= len(self.applied)
            and all(old is new for old, new in zip(self.applied, applied, strict=False))
        )


def states_for_tracker_history(
    domain: Domain,
    tracker: DialogueStateTracker,
    omit_unset_slots: bool = False,
    ignore_rule_only_turns: bool = False,
    rule_only_data: dict[str, Any] | None = None,
) -> list[State]:
    """What `Domain.states_for_tracker_history` returns, from where the last call left off."""
    kept = _kept_for(tracker)
    options = (omit_unset_slots, ignore_rule_only_turns)
    applied = tracker.applied_events()
    progress = kept.get(options)
    if progress is None or not progress.continues(applied, domain, rule_only_data):
        progress = _Progress(domain, rule_only_data, tracker.init_copy())
        kept[options] = progress
    for event in applied[len(progress.applied) :]:
        progress.now = None
        if isinstance(event, ActionExecuted):
            _describe(progress, progress.states, event.hide_rule_turn, *options)
        progress.replay.update(event)
        progress.applied.append(event)
    if progress.now is None:
        states = list(progress.states)
        _describe(replace(progress), states, False, *options)  # the state now, kept apart
        progress.now = states[len(progress.states) :]
    return [_own_copy(state) for state in (*progress.states, *progress.now)]


def _kept_for(tracker: DialogueStateTracker) -> dict[tuple[bool, bool], _Progress]:
    key = id(tracker)
    if key not in _kept:
        _kept[key] = {}
        weakref.finalize(tracker, _kept.pop, key, None)
    return _kept[key]


def _describe(
    progress: _Progress,
    states: list[State],
    hide_rule_turn: bool,
    omit_unset_slots: bool,
    ignore_rule_only_turns: bool,
) -> None:
    """One step of Rasa's loop (rasa/shared/core/domain.py, states_for_tracker_history), for the
    replayed tracker just before an action."""
    domain, tracker = progress.domain, progress.replay
    if ignore_rule_only_turns:
        if not progress.turn_was_hidden:
            progress.last_ml_action = domain._get_prev_action_sub_state(tracker)
        if not tracker.followup_action and tracker.latest_action_name != tracker.active_loop_name:
            progress.turn_was_hidden = hide_rule_turn
        if progress.turn_was_hidden:
            return
    state = domain.get_active_state(tracker, omit_unset_slots=omit_unset_slots)
    if ignore_rule_only_turns:
        domain._remove_rule_only_features(state, progress.rule_only_data)
        if states:
            domain._substitute_rule_only_user_input(state, states[-1])
        if progress.last_ml_action:
            state[constants.PREVIOUS_ACTION] = progress.last_ml_action
    states.append(domain._clean_state(state))


def _own_copy(state: State) -> State:
    """A state the caller may edit: Rasa's featurizer deletes from the user sub-state (the
    others it only reads; their values are strings and tuples)."""
    copied = dict(state)
    if constants.USER in copied:
        copied[constants.USER] = dict(copied[constants.USER])
    return copied


def install() -> None:
    """Once per serving Rasa process (bot/rasa_main.py)."""
    Domain.states_for_tracker_history = states_for_tracker_history


def uninstall() -> None:
    Domain.states_for_tracker_history = _original
