"""order_status: where is my parcel? By the order id the customer gave, or by choosing one of
their recent orders. Only the customer's own orders are ever described."""

from __future__ import annotations

import logging

from rasa_sdk.events import SlotSet

from actions.base import CareAction, Events, Turn
from actions.identity import is_external_trigger, owner_of_conversation
from actions.rules.orders import arrived, obvious_order, running_late, usual_arrival
from crm_store.clock import BUSINESS_TZ  # the warehouse's and carriers' calendar
from crm_store.orders import Order, find_order, list_orders

RECENT_ORDERS = 5
ORDERS_LOOKED_AT = 20  # how far back "my order" may reach for the one obvious order
log = logging.getLogger(__name__)


def status_label(turn: Turn, status: str) -> str:
    return turn.text_of(f"utter_label_order_{status}") or status


def describe_shipment(turn: Turn, order: Order) -> str:
    latest = order.shipments[-1]
    label = turn.text_of(f"utter_label_shipping_{latest.status}") or latest.status
    return f"{latest.location} {label}" if latest.location else label


def items_of(order: Order) -> str:
    return "、".join(item.name for item in order.items)


def tell_shipping(turn: Turn, order: Order) -> None:
    if order.status in ("delivered", "completed"):
        delivered = [s for s in order.shipments if s.status == "delivered"]
        if delivered:
            turn.say("utter_order_delivered", when=turn.local(delivered[-1].occurred_at))
        return
    if not order.shipments:
        if order.status == "paid":
            turn.say("utter_order_no_shipping")
        return
    if arrived(order):  # the delivery scan came before the order's status moved
        turn.say("utter_order_delivered", when=turn.local(order.shipments[-1].occurred_at))
        return
    shipped_on = order.shipments[0].occurred_at.astimezone(BUSINESS_TZ).date()
    today = turn.now.astimezone(BUSINESS_TZ).date()
    eta = usual_arrival(order.carrier, shipped_on)
    late = running_late(order.carrier, shipped_on, today)
    turn.say(
        "utter_order_shipping_late" if late else "utter_order_shipping",
        carrier=order.carrier or status_label(turn, "unknown_carrier"),
        event=describe_shipment(turn, order),
        when=turn.local(order.shipments[-1].occurred_at),
        eta=f"{eta.month}月{eta.day}日",
    )


def tell_order(turn: Turn, order: Order) -> None:
    status = status_label(turn, order.status)
    turn.say("utter_order_status", order_id=order.id, items=items_of(order), status=status)
    tell_shipping(turn, order)


def offer_recent_orders(turn: Turn, customer_id: int) -> None:
    orders = list_orders(turn.session, customer_id=customer_id, limit=ORDERS_LOOKED_AT)
    if not orders:
        turn.say("utter_no_orders")
        return
    obvious = obvious_order(orders)
    if obvious is not None:
        tell_order(turn, obvious)
        return
    buttons = [
        {
            "title": f"{order.id} {items_of(order)}",
            "payload": f'/order_status{{"order_id":"{order.id}"}}',
        }
        for order in orders[:RECENT_ORDERS]
    ]
    turn.dispatcher.utter_message(response="utter_choose_order", buttons=buttons)


def answer_order_status(turn: Turn) -> Events:
    customer_id = turn.customer_id
    if customer_id is None:
        return []
    order_id = (turn.tracker.get_slot("order_id") or "").strip().upper()
    if not order_id:
        offer_recent_orders(turn, customer_id)
        return []
    order = find_order(turn.session, order_id=order_id)
    if order is None or order.customer_id != customer_id:  # never reveal whose it is
        turn.say("utter_order_not_found", order_id=order_id)
    else:
        tell_order(turn, order)
    return [SlotSet("order_id", None)]


class ActionOrderStatus(CareAction):
    def name(self) -> str:
        return "action_order_status"

    def act(self, turn: Turn) -> Events:
        return answer_order_status(turn)


class ActionNotifyOrderUpdate(CareAction):
    """EXTERNAL_order_update (the order system or the scheduler, through trigger_intent): tell
    the customer where their order now stands. Only in a conversation of the order's customer,
    whoever asks: a wrong order id or conversation sends nothing and is logged."""

    def name(self) -> str:
        return "action_notify_order_update"

    def act(self, turn: Turn) -> Events:
        if not is_external_trigger(turn):
            log.warning("EXTERNAL_order_update typed into %s; ignored", turn.conversation_id)
            return []
        order_id = str(next(turn.tracker.get_latest_entity_values("order_id"), "") or "")
        order = find_order(turn.session, order_id=order_id.strip().upper()) if order_id else None
        owner = owner_of_conversation(turn)
        if order is None or owner is None or order.customer_id != owner.id:
            log.warning(
                "order update %r not sent to conversation %s: not that customer's order",
                order_id,
                turn.conversation_id,
            )
            return []
        turn.say("utter_order_update")
        tell_order(turn, order)
        return []
