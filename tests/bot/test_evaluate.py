from __future__ import annotations

import pytest

from bot.nlu.evaluate import predicted_intent, score


def test_score_by_hand() -> None:
    expected = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", "nlu_fallback"]
    accuracy, macro_f1, per_intent = score(expected, predicted)
    assert accuracy == 0.5
    # a: precision 1, recall 1/2 -> F1 2/3; b: precision 1/2, recall 1/2 -> F1 1/2
    assert per_intent == pytest.approx({"a": 2 / 3, "b": 1 / 2})
    assert macro_f1 == pytest.approx((2 / 3 + 1 / 2) / 2)


def test_retrieval_intent_is_scored_with_its_sub_intent() -> None:
    parse = {
        "intent": {"name": "faq", "confidence": 0.9},
        "response_selector": {"faq": {"response": {"intent_response_key": "faq/invoice"}}},
    }
    assert predicted_intent(parse) == "faq/invoice"


def test_plain_intent_is_scored_as_is() -> None:
    parse = {"intent": {"name": "greet"}, "response_selector": {"faq": {"response": {}}}}
    assert predicted_intent(parse) == "greet"
