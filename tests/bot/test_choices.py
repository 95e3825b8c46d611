"""Answers to a list the bot has just offered: by number, name, pointing word or a bare yes, and
the NLU step that turns them into the button they take (bot/nlu/choices.py, choice_resolver.py)."""

from __future__ import annotations

from typing import Any

import pytest
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.training_data.message import Message

from bot.nlu.choice_resolver import CHOOSE_OPTION, ChoiceResolver
from bot.nlu.choices import Choice, offered_choices, parse_payload, resolve_choice

OFFERS = [
    Choice("冬季满300减50券", '/ask_offers{"offer_key":"winter_50"}'),
    Choice("会员日95折券", '/ask_offers{"offer_key":"member_day"}'),
    Choice("新年满100减20券", '/ask_offers{"offer_key":"new_year_20"}'),
]
ONE_OFFER = OFFERS[:1]
YES_NO = [Choice("确认兑换", "/affirm"), Choice("取消", "/deny")]


def taken(text: str, choices: list[Choice]) -> str | None:
    resolution = resolve_choice(text, choices)
    return resolution.choice.title if resolution.choice else None


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("2", "会员日95折券"),
        ("２", "会员日95折券"),
        ("第二个", "会员日95折券"),
        ("我选3", "新年满100减20券"),
        ("1.", "冬季满300减50券"),
        ("要第一个吧", "冬季满300减50券"),
        ("第一張", "冬季满300减50券"),
        ("最后一个", "新年满100减20券"),
        ("我要领第二个券", "会员日95折券"),
        ("最后一张券", "新年满100减20券"),
        ("我要领满300减50的那张券", "冬季满300减50券"),
        ("会员日那个", "会员日95折券"),
        ("95折的", "会员日95折券"),
        ("新年满100减20券", "新年满100减20券"),
    ],
)
def test_a_choice_is_taken_by_number_name_or_position(text: str, title: str) -> None:
    assert taken(text, OFFERS) == title


@pytest.mark.parametrize("text", ["这个", "我要", "就这个吧", "I'll take it", "我要这个"])
def test_pointing_at_several_choices_asks_which(text: str) -> None:
    resolution = resolve_choice(text, OFFERS)
    assert resolution.choice is None and resolution.ask_which


@pytest.mark.parametrize("text", ["这个", "我要", "好的", "I'll take it", "领一张", "给我"])
def test_pointing_at_the_only_choice_takes_it(text: str) -> None:
    assert taken(text, ONE_OFFER) == "冬季满300减50券"


def test_a_number_beyond_the_list_asks_which() -> None:
    resolution = resolve_choice("5", OFFERS)
    assert resolution.choice is None and resolution.ask_which


@pytest.mark.parametrize("text", ["我的积分有多少", "我要退货", "谢谢", "订单到哪了", "/greet", ""])
def test_a_new_request_is_not_an_answer_to_the_list(text: str) -> None:
    resolution = resolve_choice(text, OFFERS)
    assert resolution.choice is None and not resolution.ask_which


def test_a_yes_to_a_question_is_left_to_the_dialogue() -> None:
    """ "好的" to 确认/取消 is an affirm (the buttons carry different intents: not a list)."""
    assert resolve_choice("好的", YES_NO).choice is None
    assert not resolve_choice("这个", YES_NO).ask_which
    assert taken("确认兑换", YES_NO) == "确认兑换"  # its name still takes it
    assert taken("2", YES_NO) == "取消"  # and its number (WeChat's numbered lines)


def test_a_name_among_other_words_says_more() -> None:
    assert resolve_choice("满300减50那张，顺便问下我积分多少", OFFERS).says_more
    assert not resolve_choice("我要领满300减50的那张券", OFFERS).says_more


def test_two_equally_named_choices_are_not_guessed() -> None:
    twins = [Choice("满100减20券", "/ask_offers{}"), Choice("满100减20券", "/ask_offers{}")]
    assert resolve_choice("满100减20", twins).choice is None


def test_payloads_are_read_like_rasas_own() -> None:
    assert parse_payload('/ask_offers{"offer_key":"a"}') == ("ask_offers", {"offer_key": "a"})
    assert parse_payload("/affirm") == ("affirm", {})
    assert parse_payload("/x{not json}") == ("x", {})
    assert parse_payload("hello") == ("", {})


def buttons(choices: list[Choice]) -> list[dict[str, str]]:
    return [{"title": c.title, "payload": c.payload} for c in choices]


def said(text: str, intent: str) -> dict[str, Any]:
    return {"event": "user", "text": text, "parse_data": {"intent": {"name": intent}}}


def test_the_list_being_answered_is_the_last_one_chosen_from() -> None:
    listed = {"event": "bot", "text": "这些", "data": {"buttons": buttons(OFFERS)}}
    issued = {"event": "bot", "text": "领取成功"}
    assert offered_choices([listed, {"event": "action", "name": "action_listen"}]) == OFFERS
    assert offered_choices([listed, said("2", "ask_offers"), issued]) == OFFERS
    assert offered_choices([listed, said("我的积分", "points_balance"), issued]) == []
    many = [listed] + [said("1", "ask_offers"), issued] * 4
    assert offered_choices(many) == []
    question = {"event": "bot", "data": {"buttons": buttons(YES_NO)}}
    assert offered_choices([question, said("确认兑换", "affirm"), issued]) == []
    links = {"event": "bot", "data": {"buttons": [{"title": "官网", "payload": "https://x"}]}}
    assert offered_choices([links]) == []


def conversation(*, loop: str | None = None) -> DialogueStateTracker:
    events = [
        ActionExecuted("action_listen"),
        UserUttered("有什么优惠", {"name": "ask_offers", "confidence": 0.99}),
        BotUttered("这些是您现在可以领取的优惠：", {"buttons": buttons(OFFERS)}),
        ActionExecuted("action_listen"),
    ]
    tracker = DialogueStateTracker.from_events("c1", events)
    if loop:
        tracker.change_loop_to(loop)
    return tracker


def read(
    text: str, tracker: DialogueStateTracker | None, intent: str, confidence: float
) -> Message:
    message = Message(data={"text": text})
    message.set("intent", {"name": intent, "confidence": confidence}, add_to_output=True)
    message.set("entities", [], add_to_output=True)
    ChoiceResolver().process([message], tracker)
    return message


def test_the_nlu_step_turns_a_number_into_the_button_it_stands_for() -> None:
    message = read("2", conversation(), "inform_rating", 0.9)
    assert message.get("intent") == {"name": "ask_offers", "confidence": 1.0}
    assert [(e["entity"], e["value"]) for e in message.get("entities")] == [
        ("offer_key", "member_day")
    ]


def test_a_claim_read_as_using_a_coupon_takes_the_named_offer() -> None:
    """On WeChat a claim that mentions the coupon was read as use_coupon and refused."""
    message = read("我要领满100减20那张券", conversation(), "use_coupon", 0.95)
    assert message.get("intent")["name"] == "ask_offers"
    assert message.get("entities")[0]["value"] == "new_year_20"


def test_pointing_at_several_becomes_a_question_back_with_those_choices() -> None:
    message = read("这个", conversation(), "affirm", 0.6)
    assert message.get("intent")["name"] == CHOOSE_OPTION
    assert message.get("offered_choices") == buttons(OFFERS)
    assert "offered_choices" in message.as_dict(only_output_properties=True)


def test_the_question_back_names_a_list_the_customer_has_been_choosing_from() -> None:
    """Having taken "2", "这个" a turn later still answers that list, and the question
    back shows it, though the bot's last reply had no buttons."""
    tracker = conversation()
    for event in (
        UserUttered("2", {"name": "ask_offers", "confidence": 1.0}),
        BotUttered("已为您领取会员日95折券"),
        ActionExecuted("action_listen"),
    ):
        tracker.update(event)
    message = read("这个", tracker, "affirm", 0.6)
    assert message.get("intent")["name"] == CHOOSE_OPTION
    assert message.get("offered_choices") == buttons(OFFERS)


def test_a_taken_choice_carries_no_list() -> None:
    assert read("2", conversation(), "inform_rating", 0.9).get("offered_choices") is None


def test_a_confident_request_around_a_name_keeps_its_reading() -> None:
    message = read(
        "满300减50那张券怎么用，顺便帮我查下订单到哪了", conversation(), "order_status", 0.95
    )
    assert message.get("intent")["name"] == "order_status"


def test_inside_a_form_and_without_a_conversation_nothing_changes() -> None:
    assert read("2", conversation(loop="survey_form"), "inform_rating", 0.9).get("intent")[
        "name"
    ] == ("inform_rating")
    assert read("2", None, "inform_rating", 0.9).get("intent")["name"] == "inform_rating"
