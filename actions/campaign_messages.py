"""EXTERNAL_care_message: the campaigns' proactive messages, composed from CRM data.

The trigger names an outbox row (`care_message_id`); its campaign's spec names the composer
(crm_store.campaigns.registry: `composer`), a function of COMPOSERS here. A message
only goes to a conversation of the row's customer, and never twice: before composing, the action
records the row's delivery in the CRM (`record_delivery`, keyed by the row's id), so a second
trigger of the row (a retry after a crash, a reclaimed claim, a second dispatcher) says nothing,
in this conversation or any other, in this session or a later one (docs/care_scheduler.md).
Campaign rules (who, when) are the scheduler's (bot/care, docs/campaigns.md); this module only
writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from actions.base import CareAction, Events, Turn
from actions.identity import (
    attach_conversation,
    identified_slots,
    is_external_trigger,
    owner_of_conversation,
)
from actions.orders import items_of
from actions.rules.care import (
    already_delivered,
    care_message_id_of,
    holiday_key,
    offer_value_parts,
    tip_family,
    warranty_item,
)
from actions.rules.channels import identity_kinds, identity_value
from crm_store.campaigns import Campaign, get_campaign_by_id
from crm_store.campaigns.coupons import find_message_coupon
from crm_store.campaigns.registry import find_spec
from crm_store.campaigns.rules import BIRTHDAY_GIFTS
from crm_store.customers import Customer
from crm_store.deliveries import record_delivery
from crm_store.errors import NotFound
from crm_store.identities import channel_of as identity_channel
from crm_store.identities import find_customer_by_identity
from crm_store.offers import get_offer_by_id
from crm_store.orders import list_orders, list_warranties
from crm_store.outbox import CareMessage, get_care_message
from crm_store.points import earn_points

log = logging.getLogger(__name__)

Composer = Callable[[Turn, Customer, CareMessage, Campaign], bool]


def birthday(turn: Turn, customer: Customer, message: CareMessage, campaign: Campaign) -> bool:
    """The greeting with the tier's gift: points credited now (once per year: the ledger's
    unique key for the year's gift), or the coupon planned with the message
    (docs/campaigns.md)."""
    gift = BIRTHDAY_GIFTS.get(customer.tier, BIRTHDAY_GIFTS["普通"])
    if gift.kind == "coupon":
        return offer_message(turn, customer, message, campaign, "utter_care_birthday_coupon")
    reason = f"birthday_gift:{message.period}"
    earn_points(
        turn.session,
        customer_id=customer.id,
        points=gift.value,
        reason=reason,
        idempotency_key=reason,
        clock=turn.clock,
    )
    turn.say("utter_care_birthday", name=customer.name, points=gift.value)
    return True


def offer_message(
    turn: Turn, customer: Customer, message: CareMessage, campaign: Campaign, response: str
) -> bool:
    """A message that hands over the coupon planned with it, while it can still be used."""
    coupon = find_message_coupon(
        turn.session, customer_id=customer.id, campaign_key=campaign.key, period=message.period
    )
    if coupon is None or coupon.status != "issued" or coupon.expires_at <= turn.now:
        return False
    label, values = offer_value_parts(get_offer_by_id(turn.session, offer_id=coupon.offer_id))
    turn.say(
        response,
        name=customer.name,
        value=turn.text_of(label).format(**values),
        code=coupon.code,
        expires=turn.local(coupon.expires_at, "%Y年%m月%d日"),
    )
    return True


def holiday(turn: Turn, customer: Customer, message: CareMessage, campaign: Campaign) -> bool:
    label = turn.text_of(f"utter_label_holiday_{holiday_key(message.period)}")
    name = label or turn.text_of("utter_label_holiday_generic")
    turn.say("utter_care_holiday", name=customer.name, holiday=name)
    return True


def follow_up(turn: Turn, customer: Customer, message: CareMessage, campaign: Campaign) -> bool:
    orders = list_orders(turn.session, customer_id=customer.id, limit=1)
    if orders:
        turn.say("utter_care_follow_up", name=customer.name, product=items_of(orders[0]))
    else:
        turn.say("utter_care_follow_up_general", name=customer.name)
    return True


def care_tip(turn: Turn, customer: Customer, message: CareMessage, campaign: Campaign) -> bool:
    response = f"utter_care_tip_{tip_family(message.period)}"
    if not turn.text_of(response):
        response = "utter_care_tip_generic"
    turn.say(response, name=customer.name)
    return True


def warranty_reminder(
    turn: Turn, customer: Customer, message: CareMessage, campaign: Campaign
) -> bool:
    order_id, sku = warranty_item(message.period)
    for warranty in list_warranties(turn.session, customer_id=customer.id):
        if warranty.order_id == order_id and warranty.sku == sku:
            ends_on = f"{warranty.ends_on.year}年{warranty.ends_on.month}月{warranty.ends_on.day}日"
            turn.say(
                "utter_care_warranty_reminder",
                name=customer.name,
                product=warranty.product_name,
                ends_on=ends_on,
            )
            return True
    return False


def win_back(turn: Turn, customer: Customer, message: CareMessage, campaign: Campaign) -> bool:
    """The personal offer: the coupon (its level by CLV and tier) planned with the message."""
    return offer_message(turn, customer, message, campaign, "utter_care_win_back")


# Composer names (a campaign spec's `composer`) -> composer. Each says its message and returns
# True, or False when it has nothing to say (a coupon used up meanwhile, an item gone).
COMPOSERS: dict[str, Composer] = {
    "birthday": birthday,
    "holiday": holiday,
    "follow_up": follow_up,
    "care_tip": care_tip,
    "warranty_reminder": warranty_reminder,
    "win_back": win_back,
}


class ActionSendCareMessage(CareAction):
    def name(self) -> str:
        return "action_send_care_message"

    def act(self, turn: Turn) -> Events:
        if not is_external_trigger(turn):
            log.warning("EXTERNAL_care_message typed into %s; ignored", turn.conversation_id)
            return []
        message_id = care_message_id_of(turn.tracker.latest_message.get("entities") or [])
        if message_id is None:
            log.warning(
                "care message trigger without a care_message_id in %s", turn.conversation_id
            )
            return []
        if already_delivered(turn.tracker.events, message_id):
            log.info("care message %s already delivered to %s", message_id, turn.conversation_id)
            return []
        try:
            message = get_care_message(turn.session, message_id=message_id)
            campaign = get_campaign_by_id(turn.session, campaign_id=message.campaign_id)
        except NotFound:
            log.warning("care message %s does not exist", message_id)
            return []
        customer = owner_of_conversation(turn)
        if customer is None or customer.id != message.customer_id:
            log.warning(
                "care message %s not sent to %s: not that customer's conversation",
                message_id,
                turn.conversation_id,
            )
            return []
        if not first_delivery(turn, message):
            log.info("care message %s was delivered before; not again", message_id)
            return []
        composer = composer_of(campaign.key)
        if composer is None or not composer(turn, customer, message, campaign):
            log.warning("care message %s (%s) has nothing to say", message_id, campaign.key)
        return recognised(turn, customer)


def composer_of(campaign_key: str) -> Composer | None:
    spec = find_spec(campaign_key)
    return None if spec is None else COMPOSERS.get(spec.composer)


def first_delivery(turn: Turn, message: CareMessage) -> bool:
    """Record the outbox row's delivery to this conversation; False when it had one already
    (anywhere): the trigger then says nothing. Also used by the follow-up survey's trigger."""
    return record_delivery(
        turn.session,
        care_message_id=message.id,
        conversation_id=turn.crm_conversation_id,
        channel=delivery_channel(turn, message),
        clock=turn.clock,
    )


def delivery_channel(turn: Turn, message: CareMessage) -> str:
    """The channel the trigger reached: the scheduler addresses a customer's channel identity
    (a WeChat OpenID, a web user id), whose kind names it; a trigger carries no trustworthy
    input channel (Rasa copies the conversation's previous one). Else the planned channel."""
    for kind in identity_kinds(None):
        value = identity_value(kind, turn.conversation_id)
        if value is None:
            continue
        owner = find_customer_by_identity(turn.session, kind=kind, value=value)
        if owner is not None and owner.id == message.customer_id:
            return identity_channel(kind)
    return message.channel


def recognised(turn: Turn, customer: Customer) -> Events:
    """A conversation the scheduler opened is the customer's: they need not identify to answer."""
    if turn.customer() is not None:
        return []
    attach_conversation(turn, customer)
    return identified_slots(customer)
