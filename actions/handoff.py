"""request_human: record that the customer wants a person (the live handoff comes later)."""

from __future__ import annotations

from actions.base import CareAction, Events, Turn
from actions.identity import channel_of
from crm_store.handoffs import request_handoff


class ActionRequestHuman(CareAction):
    def name(self) -> str:
        return "action_request_human"

    def act(self, turn: Turn) -> Events:
        recent = turn.customer_intents()[-3:]
        reason = "complaint" if "complaint" in recent else "customer_request"
        request_handoff(
            turn.session,
            clock=turn.clock,
            conversation_id=turn.crm_conversation_id,
            channel=channel_of(turn),
            reason=reason,
            customer_id=turn.customer_id,
        )
        turn.say("utter_handoff_recorded")
        return []
