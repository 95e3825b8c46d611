"""The campaign registry (crm_store.campaigns.registry) against what sends the campaigns: every
registered campaign has a composer in actions/, its responses and intent in domain.yml, and
the demo creates exactly the registered campaigns (docs/campaigns.md, "Adding a campaign")."""

from __future__ import annotations

import pkgutil

from rasa_sdk.executor import ActionExecutor
from sqlalchemy.engine import Engine

from actions.campaign_messages import COMPOSERS
from crm_store.campaigns import list_campaigns
from crm_store.campaigns.catalogue import __path__ as catalogue_path
from crm_store.campaigns.registry import REGISTRY, campaign_keys, priority_order
from crm_store.campaigns.spec import CARE_MESSAGE_INTENT
from crm_store.db import session_scope
from crm_store.demo import DEMO_DAILY_CAPS
from tests.actions.helpers import DOMAIN


def registered_actions() -> set[str]:
    """The action names the action server registers (rasa-sdk, as bot/action_server.py does)."""
    executor = ActionExecutor()
    executor.register_package("actions")
    return set(executor.actions)


def test_every_campaign_has_a_composer_and_its_responses() -> None:
    actions = registered_actions()
    responses = set(DOMAIN["responses"])
    for spec in REGISTRY:
        if spec.intent == CARE_MESSAGE_INTENT:
            assert spec.composer in COMPOSERS, spec.key
            assert "action_send_care_message" in actions
        else:
            assert spec.composer in actions, spec.key
            assert spec.composer in DOMAIN["actions"], spec.key
        assert spec.intent in DOMAIN["intents"], spec.key
        assert spec.responses, spec.key
        assert set(spec.responses) <= responses, spec.key


def test_every_composer_belongs_to_a_campaign() -> None:
    named = {spec.composer for spec in REGISTRY if spec.intent == CARE_MESSAGE_INTENT}
    assert set(COMPOSERS) == named


def test_the_registry_holds_every_catalogue_module_by_its_key_most_important_first() -> None:
    modules = {module.name for module in pkgutil.iter_modules(catalogue_path)}
    keys = campaign_keys()
    assert set(keys) == modules and len(keys) == len(set(keys))
    assert [spec.priority for spec in REGISTRY] == sorted(spec.priority for spec in REGISTRY)
    assert keys == [
        "delivery_follow_up",
        "warranty_reminder",
        "follow_up",
        "birthday",
        "holiday",
        "care_tip",
        "win_back",
    ]
    assert priority_order() == ("complaint_follow_up", *keys)


def test_the_demo_creates_exactly_the_registered_campaigns(crm: Engine) -> None:
    assert set(DEMO_DAILY_CAPS) <= set(campaign_keys())  # a demo cap only for a campaign
    with session_scope(crm) as session:
        created = [campaign.key for campaign in list_campaigns(session)]
    assert sorted(created) == sorted(campaign_keys())
