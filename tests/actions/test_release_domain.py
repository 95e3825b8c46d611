"""Actions read the release's domain.yml, since Rasa no longer sends its domain with each call."""

from __future__ import annotations

from pathlib import Path

from rasa.shared.core.domain import Domain

from actions.base import DOMAIN_FILE, release_domain
from bot.runtime import endpoints_config
from bot.settings import load_settings


def test_the_release_domain_holds_what_rasa_would_have_sent_the_actions() -> None:
    sent = Domain.load(DOMAIN_FILE).as_dict()
    read = release_domain()
    assert read["responses"] == sent["responses"]
    assert {name: form["required_slots"] for name, form in read["forms"].items()} == {
        name: form["required_slots"] for name, form in sent["forms"].items()
    }


def test_rasa_sends_the_domain_only_to_form_validations(tmp_path: Path) -> None:
    """Rasa always sends it to `validate_<form>` actions; to no other action of ours."""
    endpoint = endpoints_config(load_settings({"CAREBOT_VAR_DIR": str(tmp_path)}))[
        "action_endpoint"
    ]
    domain = Domain.load(DOMAIN_FILE)
    sent_to = {
        a for a in domain.user_actions if domain.does_custom_action_explicitly_need_domain(a)
    }
    assert endpoint["enable_selective_domain"] is True
    assert sent_to == {a for a in domain.user_actions if a.startswith("validate_")}
