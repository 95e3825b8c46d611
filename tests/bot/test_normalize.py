from __future__ import annotations

import pytest
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.normalize import TraditionalToSimplified, to_simplified


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [
        ("我的訂單到哪了", "我的订单到哪了"),
        ("積分還有多少", "积分还有多少"),
        ("我要退貨退款", "我要退货退款"),
        ("轉人工客服", "转人工客服"),
        ("發票怎麼開", "发票怎么开"),
    ],
)
def test_traditional_becomes_simplified(traditional: str, simplified: str) -> None:
    assert to_simplified(traditional) == simplified


@pytest.mark.parametrize("text", ["我的订单到哪了", "my order 到哪了?", "好的👍", "DD202611020387"])
def test_simplified_english_and_emoji_are_unchanged(text: str) -> None:
    assert to_simplified(text) == text


@pytest.mark.parametrize("text", ["乾燥的頭髮", "這個吹風機壞了", "後來的著作", "計算機軟體"])
def test_length_is_kept_so_entity_offsets_stay_valid(text: str) -> None:
    assert len(to_simplified(text)) == len(text)


def test_component_rewrites_messages_and_training_examples() -> None:
    component = TraditionalToSimplified()
    [message] = component.process([Message(data={"text": "訂單查詢"})])
    assert message.get("text") == "订单查询"

    data = TrainingData([Message(data={"text": "積分兌換", "intent": "redeem_points"})])
    component.process_training_data(data)
    assert data.training_examples[0].get("text") == "积分兑换"


def test_annotated_entity_values_follow_the_text() -> None:
    entity = {"start": 0, "end": 3, "value": "吹風機", "entity": "product"}
    example = Message(data={"text": "吹風機壞了", "intent": "complaint", "entities": [entity]})
    data = TrainingData([example])
    TraditionalToSimplified().process_training_data(data)
    [normalised] = data.training_examples
    assert normalised.get("text") == "吹风机坏了"
    assert normalised.get("entities")[0]["value"] == "吹风机"
