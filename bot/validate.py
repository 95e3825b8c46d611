"""`carebot validate`: `rasa data validate --fail-on-warnings`, minus two false alarms.

Rasa warns about every intent without NLU examples and every response no story or rule utters.
Intents the scheduler sends (`EXTERNAL_*`) have no examples by design. Many responses are
uttered by custom actions (`turn.say("utter_order_status", ...)`), by channels, by the staff
console, by forms (`utter_ask_<slot>`) or by Rasa's own fallback (`utter_default`); those count
as used. A response nothing utters, and every other warning, still fails. Runs in its own
process: the checks are patched there only.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from bot.training import rasa_env

NAMED_IN_CODE = re.compile(r"utter_[a-z0-9][a-z0-9_]*")  # a bare f"utter_{x}" names nothing
ALWAYS_USED = {"utter_default"}  # uttered by Rasa's action_default_fallback


def responses_named_in(sources: Iterable[Path]) -> set[str]:
    return {name for path in sources for name in NAMED_IN_CODE.findall(path.read_text())}


def is_named(response: str, named: set[str]) -> bool:
    """Named outright, or covered by an f-string prefix such as `utter_label_order_`."""
    return response in named or any(
        name.endswith("_") and response.startswith(name) for name in named
    )


def uttered_outside_stories(
    responses: Iterable[str], named: set[str], form_slots: Iterable[str]
) -> set[str]:
    asked = {f"utter_ask_{slot}" for slot in form_slots}
    return {r for r in responses if r in ALWAYS_USED or r in asked or is_named(r, named)}


def _run_patched_validation(project_dir: Path) -> None:
    import rasa.__main__
    from rasa.validator import Validator

    sources = [
        *(project_dir / "actions").rglob("*.py"),
        *(project_dir / "bot/channels").rglob("*.py"),
        *(project_dir / "bot/console").rglob("*.py"),  # what agents' actions tell the customer
    ]
    named = responses_named_in(sorted(sources))
    gather = Validator._gather_utterance_actions

    def story_checked_responses(self: Validator) -> set[str]:
        responses = gather(self)
        slots = {s for form in self.domain.forms.values() for s in form["required_slots"]}
        return responses - uttered_outside_stories(responses, named, slots)

    Validator._gather_utterance_actions = story_checked_responses
    customer_intents = Validator._non_default_intents

    def intents_customers_say(self: Validator) -> list[str]:
        """EXTERNAL_* intents come from the scheduler (trigger_intent), never from a customer,
        so they have no NLU examples."""
        return [i for i in customer_intents(self) if not i.startswith("EXTERNAL_")]

    Validator._non_default_intents = intents_customers_say
    sys.argv = ["rasa", "data", "validate", "--fail-on-warnings"]
    sys.argv += ["--domain", "domain.yml", "--data", "data", "--config", "config.yml"]
    rasa.__main__.main()


def validate(project_dir: Path) -> int:
    command = [sys.executable, "-m", "bot.validate", str(project_dir)]
    return subprocess.run(command, cwd=project_dir, env=rasa_env()).returncode


if __name__ == "__main__":
    _run_patched_validation(Path(sys.argv[1]))
