"""A points redemption happens once under a timeout: Rasa gives up on action_redeem_points and
drops its events while the spend still commits; the customer's retry must not spend again
(docs/care_dialogues.md). The demo CRM of tests/actions/conftest.py; 王小明 has points."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.engine import Engine

from actions.points import ActionRedeemPoints, ValidateRedeemForm
from crm_store.clock import fixed
from crm_store.db import session_scope
from crm_store.points import list_points_entries, points_balance
from tests.actions.helpers import DOMAIN, NOW, WANG, Run, identified, responses, slots_set, tracker

REQUEST = "0123456789abcdef0123456789abcdef"


def balance(crm: Engine) -> int:
    with session_scope(crm) as session:
        return points_balance(session, customer_id=WANG)


def redemptions(crm: Engine) -> list[tuple[int, str | None]]:
    """The customer's redemptions made by the test (the demo data has earlier ones, unkeyed)."""
    with session_scope(crm) as session:
        entries = list_points_entries(session, customer_id=WANG, limit=1000)
    return [(e.delta, e.idempotency_key) for e in entries if e.reason == "coupon:web-test"]


def confirmed(request: str = REQUEST, amount: str = "500") -> Any:
    """What action_redeem_points receives once the customer confirmed."""
    slots = {
        **identified(WANG),
        "points_amount": amount,
        "redeem_confirmed": True,
        "redemption_id": request,
    }
    return tracker(slots=slots, text="确认兑换", intent="affirm")


def asked_again(text: str = "兑换500积分", **left_over: Any) -> Any:
    """The form starting again after Rasa's apology: the slots the unanswered action never
    cleared are still set, and Rasa's activation hands them to the validation."""
    prefilled = {k: v for k, v in left_over.items() if k in ("points_amount", "redeem_confirmed")}
    return tracker(
        slots={**identified(WANG), **left_over},
        extracted=prefilled,
        text=text,
        intent="redeem_points",
        active_loop="redeem_form",
    )


def test_an_accepted_amount_opens_a_redemption_to_confirm(run: Run) -> None:
    state = tracker(
        slots={**identified(WANG), "requested_slot": "points_amount"},
        extracted={"points_amount": "500"},
        active_loop="redeem_form",
    )
    slots = slots_set(run(ValidateRedeemForm(), state)[1])
    assert slots["points_amount"] == "500" and slots["redeem_confirmed"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", slots["redemption_id"])


def test_a_retry_after_rasa_gave_up_tells_the_first_result_and_spends_nothing(
    run: Run, crm: Engine
) -> None:
    before = balance(crm)
    run(ActionRedeemPoints(), confirmed())  # committed; Rasa had given up: its events are lost
    assert balance(crm) == before - 500

    left_over = {"points_amount": "500", "redeem_confirmed": True, "redemption_id": REQUEST}
    messages, events = run(ValidateRedeemForm(), asked_again(**left_over))
    assert responses(messages) == ["utter_redeemed"]
    assert (messages[0]["points"], messages[0]["yuan"], messages[0]["balance"]) == (
        500,
        5,
        before - 500,
    )
    slots = slots_set(events)
    assert slots["requested_slot"] is None and slots["redemption_id"] is None
    assert balance(crm) == before - 500
    assert redemptions(crm) == [(-500, f"redeem:{REQUEST}")]


def test_a_retry_of_a_spend_that_never_happened_is_confirmed_again_and_spends_once(
    run: Run, crm: Engine
) -> None:
    """The action failed before it wrote anything (or is still running): the same redemption
    is asked to be confirmed again, under the same id, and spends once however often the
    confirmation is run."""
    before = balance(crm)
    left_over = {"points_amount": "500", "redeem_confirmed": True, "redemption_id": REQUEST}
    slots = slots_set(run(ValidateRedeemForm(), asked_again(**left_over))[1])
    assert slots["redemption_id"] == REQUEST and slots["points_amount"] == "500"
    assert slots["redeem_confirmed"] is None  # a left-over confirmation is not one
    for _ in range(3):  # each time Rasa gives up and the customer confirms once more
        messages, _ = run(ActionRedeemPoints(), confirmed())
        assert responses(messages) == ["utter_redeemed"] and messages[0]["points"] == 500
        assert messages[0]["balance"] == before - 500
    assert redemptions(crm) == [(-500, f"redeem:{REQUEST}")]


def test_concurrent_runs_of_one_confirmed_redemption_spend_once(crm: Engine) -> None:
    """The retry arrives while the first run is still writing."""
    before = balance(crm)
    barrier = threading.Barrier(2)

    def redeem(_: int) -> list[dict[str, Any]]:
        action = ActionRedeemPoints()
        action.engine, action.clock = crm, fixed(NOW)
        dispatcher = CollectingDispatcher()
        barrier.wait(10)
        action.run_in_transaction(dispatcher, confirmed(), DOMAIN)
        return dispatcher.messages

    with ThreadPoolExecutor(2) as pool:
        said = list(pool.map(redeem, range(2)))
    assert [responses(messages) for messages in said] == [["utter_redeemed"]] * 2
    assert balance(crm) == before - 500
    assert redemptions(crm) == [(-500, f"redeem:{REQUEST}")]


def test_a_new_redemption_after_an_answered_one_spends_again(run: Run, crm: Engine) -> None:
    before = balance(crm)
    _, events = run(ActionRedeemPoints(), confirmed())
    assert slots_set(events)["redemption_id"] is None  # answered: the redemption is closed
    state = tracker(
        slots={**identified(WANG), "requested_slot": "points_amount"},
        extracted={"points_amount": "300"},
        active_loop="redeem_form",
    )
    new_request = slots_set(run(ValidateRedeemForm(), state)[1])["redemption_id"]
    assert new_request != REQUEST
    run(ActionRedeemPoints(), confirmed(new_request, "300"))
    assert balance(crm) == before - 800
    assert sorted(redemptions(crm)) == sorted(
        [(-500, f"redeem:{REQUEST}"), (-300, f"redeem:{new_request}")]
    )


def test_a_cancelled_redemption_closes_its_id(run: Run, crm: Engine) -> None:
    before = balance(crm)
    declined = {
        **identified(WANG),
        "points_amount": "500",
        "redeem_confirmed": False,
        "redemption_id": REQUEST,
    }
    messages, events = run(ActionRedeemPoints(), tracker(slots=declined))
    assert responses(messages) == ["utter_redeem_cancelled"]
    assert slots_set(events)["redemption_id"] is None and balance(crm) == before
