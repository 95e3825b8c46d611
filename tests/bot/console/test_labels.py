"""Every code a console page shows has its label in bot/console/labels.py, under the names the
code really has (the CRM's channels, Rasa's output channels, the CRM's states and kinds)."""

from __future__ import annotations

from bot.care.routing import OUTPUT_CHANNELS
from bot.console import labels
from crm_store.handoff_queue import CONSOLE_OUTCOMES, REASON_WEIGHTS
from crm_store.models import CHANNELS, LIFECYCLE_STAGES, ORDER_STATUSES, TICKET_KINDS


def test_channels_read_alike_under_the_crms_names_and_rasas() -> None:
    assert set(labels.CHANNELS) == set(CHANNELS)
    for crm_name, rasa_name in OUTPUT_CHANNELS.items():
        assert labels.RASA_CHANNELS[rasa_name] == labels.CHANNELS[crm_name]
    assert labels.RASA_CHANNELS["rest"] == "接口"  # the brand's back ends
    assert labels.VALUE_NAMES["channel"] == labels.CHANNELS


def test_every_state_kind_and_reason_of_the_crm_has_a_label() -> None:
    assert set(labels.ORDER_STATUSES) == set(ORDER_STATUSES)
    assert set(labels.TICKET_KINDS) == set(TICKET_KINDS)
    assert set(labels.HANDOFF_REASONS) == set(REASON_WEIGHTS)
    assert set(labels.HANDOFF_OUTCOMES) == set(CONSOLE_OUTCOMES)
    assert set(labels.STAGES) == set(LIFECYCLE_STAGES)
