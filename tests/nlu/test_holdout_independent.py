"""The gated sets (`tests/nlu/holdout.yml`, `tests/nlu/outside.yml`) stay independent of the
training data (`data/nlu/`) and of each other.

The NLU gate means something only if no held-out message was also trained on. Two messages count
as the same when they are equal after the normalisation the pipeline itself applies (Traditional
to Simplified) and after dropping what does not change the meaning for the classifier: case,
whitespace, punctuation and full-width forms.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from bot.nlu import evaluate
from bot.nlu.evaluate import Example, load_examples
from bot.nlu.normalize import to_simplified

ROOT = Path(__file__).resolve().parents[2]
TRAINING = ROOT / "data" / "nlu"
HOLDOUT = ROOT / evaluate.HOLDOUT
OUTSIDE = ROOT / evaluate.OUTSIDE


def normalised(text: str) -> str:
    """Simplified, lower-case, full-width folded, without punctuation or whitespace.

    Symbols (emoji, ★) are kept, so that messages made only of them stay distinct.
    """
    folded = to_simplified(unicodedata.normalize("NFKC", text)).lower()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] not in "PZC")


@pytest.fixture(scope="module")
def training() -> list[Example]:
    return load_examples(TRAINING)


@pytest.fixture(scope="module", params=sorted(evaluate.NLU_GATES))
def holdout(request: pytest.FixtureRequest) -> list[Example]:
    """Each set `carebot nlu-gate` holds the model to, in turn."""
    return load_examples(ROOT / request.param)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("我的積分還有多少？", "我的积分还有多少"),
        ("What time do you OPEN?", "what time do you open"),
        ("积分 查询，谢谢！", "积分查询谢谢"),
        ("ＯＫ　的", "ok的"),
    ],
)
def test_normalisation_ignores_script_case_spacing_and_punctuation(one: str, other: str) -> None:
    assert normalised(one) == normalised(other)


def test_normalisation_keeps_messages_made_of_symbols_apart() -> None:
    assert normalised("👌👌") != normalised("❌")
    assert normalised("👌👌") != ""


def test_both_sets_are_read(training: list[Example], holdout: list[Example]) -> None:
    assert len(training) > 1000
    assert len(holdout) > 200


def test_no_training_example_is_a_held_out_example(
    training: list[Example], holdout: list[Example]
) -> None:
    held_out = {normalised(e.text): e for e in holdout}
    shared = [
        f"{e.text!r} ({e.intent}) = held-out {held_out[normalised(e.text)].text!r}"
        for e in training
        if normalised(e.text) in held_out
    ]
    assert not shared, "training examples found in a gated set:\n" + "\n".join(shared)


def test_the_two_gated_sets_share_no_message() -> None:
    held_out = {normalised(e.text) for e in load_examples(HOLDOUT)}
    assert not held_out & {normalised(e.text) for e in load_examples(OUTSIDE)}
