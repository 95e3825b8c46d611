"""Rasa checks every action server answer against a JSON schema with `jsonschema.validate`,
which first validates the schema itself against the JSON Schema meta-schema, on every call:
about an eighth of the Rasa server's time under load in our profile (py-spy, docs/benchmarks.md).
`install()` checks answers with one validator built once for the same schema: the same errors,
the same message, without re-checking the schema."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for
from rasa.core.actions.action import RemoteAction

_INSTALLED = "_carebot_cached_schema"
ORIGINAL = RemoteAction._validate_action_result


@lru_cache(maxsize=1)
def _validator() -> Any:
    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)  # once, as jsonschema.validate does on every call
    return validator_class(schema)


def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
    error = best_match(_validator().iter_errors(result))  # the error jsonschema.validate raises
    if error is None:
        return True
    error.message += (
        ". Failed to validate Action server response from API, make sure your response "
        "from the Action endpoint is valid. For more information about the format visit "
        "https://rasa.com/docs/rasa/custom-actions"
    )
    raise error


def install() -> None:
    if getattr(RemoteAction._validate_action_result, _INSTALLED, False):
        return
    setattr(validate_action_result, _INSTALLED, True)
    RemoteAction._validate_action_result = validate_action_result
