"""Leaving a form forgets what it asked: its required slots come from the domain Rasa sends
(domain.yml's `forms`), plus the few extra slots actions/forms.py names."""

from __future__ import annotations

import pytest

from actions.forms import EXTRA_SLOTS, ActionStopForm, form_slots, required_slots
from tests.actions.helpers import DOMAIN, Run, slots_set, tracker

FORMS = sorted(DOMAIN["forms"])


@pytest.mark.parametrize("form", FORMS)
def test_leaving_any_form_of_the_domain_forgets_every_slot_it_asked(run: Run, form: str) -> None:
    asked = {slot: "given" for slot in DOMAIN["forms"][form]["required_slots"]}
    state = tracker(text="算了", intent="deny", active_loop=form, slots=asked)
    _, events = run(ActionStopForm(), state)
    cleared = {slot for slot, value in slots_set(events).items() if value is None}
    assert {*asked, *EXTRA_SLOTS.get(form, ())} <= cleared
    assert {"requested_slot", "pending_intent"} <= cleared
    assert any(e["event"] == "active_loop" and e["name"] is None for e in events)


def test_the_extra_slots_are_slots_of_forms_of_the_domain_and_not_required_ones() -> None:
    assert set(EXTRA_SLOTS) <= set(FORMS)
    for form, extra in EXTRA_SLOTS.items():
        assert set(extra) <= set(DOMAIN["slots"]), form
        assert not set(extra) & set(DOMAIN["forms"][form]["required_slots"]), form


def test_the_slots_are_the_domains_as_rasa_sends_it() -> None:
    domain = {"forms": {"a_form": {"required_slots": ["x", "y"]}}}
    assert form_slots(domain, "a_form") == ("x", "y")
    assert form_slots(domain, "identify_form") == ("otp_state",)  # not in this domain
    assert form_slots({}, "a_form") == ()
    assert form_slots(DOMAIN, "return_form") == ("order_id", "return_item", "return_reason")
    assert required_slots(DOMAIN, "survey_form") == ("survey_csat", "survey_nps", "survey_comment")
    assert form_slots(DOMAIN, "survey_form")[-1] == "survey_due"
