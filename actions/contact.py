"""update_contact: a new mainland mobile number, confirmed before it is saved, audit-logged."""

from __future__ import annotations

from typing import Any

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn
from actions.forms import CareFormValidation
from actions.rules.identity import mask_mobile, normalize_mobile
from crm_store.customers import find_customer, update_customer


class ValidateUpdateContactForm(CareFormValidation):
    form = "update_contact_form"

    def validate_new_phone(self, value: Any, turn: Turn) -> dict[str, Any]:
        phone = normalize_mobile(str(value or ""))
        if phone is None:
            turn.say("utter_new_phone_invalid")
            return {"new_phone": None}
        owner = find_customer(turn.session, phone=phone)
        if owner is not None and owner.id != turn.customer_id:
            turn.say("utter_contact_taken")
            return {"new_phone": None}
        return {"new_phone": phone, "masked_phone": mask_mobile(phone)}


class ActionUpdateContact(CareAction):
    def name(self) -> str:
        return "action_update_contact"

    def act(self, turn: Turn) -> Events:
        reset = [SlotSet("new_phone", None), SlotSet("contact_confirmed", None)]
        phone = turn.tracker.get_slot("new_phone")
        customer_id = turn.customer_id
        if not turn.tracker.get_slot("contact_confirmed") or not phone or customer_id is None:
            turn.say("utter_contact_unchanged")
            return reset
        update_customer(
            turn.session,
            clock=turn.clock,
            customer_id=customer_id,
            actor=f"customer:{customer_id}",
            phone=phone,
        )
        turn.say("utter_contact_updated", masked_phone=mask_mobile(phone))
        return reset
