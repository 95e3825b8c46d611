from __future__ import annotations

from typing import Any

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from bot import action_results


@pytest.fixture()
def action() -> RemoteAction:
    return RemoteAction("action_x", EndpointConfig("http://127.0.0.1:9/webhook"))


@pytest.mark.parametrize(
    "result",
    [
        {"events": [], "responses": []},
        {"events": [{"event": "slot", "name": "a", "value": 1}], "responses": [{"text": "hi"}]},
    ],
)
def test_valid_answers_pass_like_rasas_own_check(
    action: RemoteAction, result: dict[str, Any]
) -> None:
    assert action_results.ORIGINAL(action, result) is True
    assert action_results.validate_action_result(action, result) is True


@pytest.mark.parametrize(
    "result",
    [
        {"events": [{"no_event_key": 1}]},
        {"events": "not a list"},
        {"responses": [{"text": 5}], "events": [{"event": 3}]},
    ],
)
def test_invalid_answers_fail_with_rasas_message(
    action: RemoteAction, result: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as theirs:
        action_results.ORIGINAL(action, result)
    with pytest.raises(ValidationError) as ours:
        action_results.validate_action_result(action, result)
    assert ours.value.message == theirs.value.message


def test_installing_replaces_the_check_once() -> None:
    action_results.install()
    action_results.install()
    assert RemoteAction._validate_action_result is action_results.validate_action_result
