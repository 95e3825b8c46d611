"""Feedback analysis: clear cases, the lexicon machinery, the metric, and quality gates.

The first `analyse` builds the spaCy pipeline (spaCy's import pulls in TensorFlow): ~10 s once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from actions.feedback import NOTHING, Analysis, analyse, normalise, themes
from actions.feedback._lexicon import load_polarity, load_themes
from actions.feedback._pipeline import _fewest_pieces, build, pipeline
from actions.feedback.evaluate import (
    LabelledComment,
    evaluate,
    load_labelled,
    main,
    score_comments,
    to_markdown,
)

DATA = Path(__file__).parents[1] / "feedback"
TUNING = DATA / "labelled_comments.yml"
HOLDOUT = DATA / "holdout_comments.yml"


def test_themes_are_the_file_order() -> None:
    assert themes() == ("物流", "质量", "价格", "客服态度", "售后", "使用体验", "退换货")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("快递三天就到了，挺快的", ("物流",)),
        ("包装破了一个角", ("物流",)),
        ("做工很粗糙", ("质量",)),
        ("性价比很高", ("价格",)),
        ("客服回复很及时", ("客服态度",)),
        ("售后一直不给修", ("售后",)),
        ("这个功能很实用", ("使用体验",)),
        ("退款到现在还没到账", ("退换货",)),
        ("物流太慢了！！！客服也不理人，质量还差", ("物流", "质量", "客服态度")),
        ("谢谢", ()),
        ("快点", ()),  # 快 inside a request is no theme
    ],
)
def test_each_theme(text: str, expected: tuple[str, ...]) -> None:
    assert analyse(text).themes == expected


@pytest.mark.parametrize(
    ("text", "polarity"),
    [
        ("物流太慢了", "negative"),
        ("质量很好", "positive"),
        ("太贵了", "negative"),
        ("客服态度很差", "negative"),
        ("售后很给力", "positive"),
        ("不好用", "negative"),  # 不 flips 好用
        ("不是很满意", "negative"),
        ("很不满意", "negative"),
        ("没问题", "positive"),  # 没 flips 问题
        ("物流好慢啊", "negative"),  # 好 is "very" here
        ("不好不坏", "neutral"),
        ("一般般吧", "neutral"),
        ("收到了", "neutral"),
        ("👍", "positive"),
        ("😡😡", "negative"),
        ("🙂", "neutral"),
    ],
)
def test_polarity_of_clear_cases(text: str, polarity: str) -> None:
    assert analyse(text).polarity == polarity


def test_not_expensive_is_a_positive_price_mention() -> None:
    assert analyse("不贵") == Analysis(("价格",), "positive", analyse("不贵").score)
    assert analyse("不贵").score > 0 > analyse("贵").score


def test_intensifiers_strengthen_and_negated_intensifiers_weaken() -> None:
    assert analyse("非常好").score > analyse("很好").score > analyse("好").score > 0
    assert analyse("很不满意").score < analyse("不是很满意").score < 0


def test_the_clause_after_a_contrast_decides() -> None:
    assert analyse("质量不错，就是物流有点慢") == Analysis(
        ("物流", "质量"), "negative", analyse("质量不错，就是物流有点慢").score
    )
    assert analyse("虽然物流慢，但是质量很好").polarity == "positive"


@pytest.mark.parametrize(
    ("traditional", "simplified"),
    [
        ("質量很好，價格也不貴", "质量很好，价格也不贵"),
        ("客服態度很差", "客服态度很差"),
        ("退貨退了兩個禮拜錢還沒退回來", "退货退了两个礼拜钱还没退回来"),
        ("ＡＰＰ很好用！", "app很好用!"),  # full-width, upper case
    ],
)
def test_traditional_and_full_width_read_like_simplified(traditional: str, simplified: str) -> None:
    assert normalise(traditional) == normalise(simplified)
    assert analyse(traditional) == analyse(simplified)


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text_has_nothing(text: str) -> None:
    assert analyse(text) == NOTHING == Analysis((), "neutral", 0.0)


@pytest.mark.parametrize(
    "text", ["太差太差太差太差太差太差太差！！！垃圾骗子", "非常非常好，特别满意，强烈推荐👍👍👍👍"]
)
def test_score_stays_in_range(text: str) -> None:
    assert -1.0 <= analyse(text).score <= 1.0


def test_analysis_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        analyse("好").polarity = "negative"  # type: ignore[misc]


# --- the segmenter --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("很快", ["很", "快"]),  # a modifier glued to a sentiment word
        ("太贵了", ["太", "贵", "了"]),
        ("不错", ["不错"]),  # a sentiment word is never cut
        ("一般般", ["一般般"]),
        ("快递", ["快递"]),  # 快 is not cut out of 快递
        ("虽然物流慢", ["虽然", "物流", "慢"]),  # a theme phrase freeing a sentiment word
    ],
)
def test_segmentation(text: str, tokens: list[str]) -> None:
    assert [token.text for token in pipeline().nlp(text)] == tokens


def test_fewest_pieces() -> None:
    pieces = frozenset({"价格", "便宜", "价", "格", "很"})
    assert _fewest_pieces("价格便宜", pieces) == ["价格", "便宜"]
    assert _fewest_pieces("很贵", pieces) is None
    assert _fewest_pieces("价格", pieces) == ["价", "格"]  # never the whole token itself


def test_a_theme_added_in_data_is_found(tmp_path: Path) -> None:
    extra = tmp_path / "themes.yml"
    extra.write_text(
        "发票:\n  phrases: [发票, 开票, 电子发票]\n物流:\n  phrases: [快递]\n", encoding="utf-8"
    )
    custom = build(load_themes(extra), load_polarity())
    assert custom.themes(custom.nlp("能开电子发票吗，快递到了")) == ("发票", "物流")


def test_a_theme_without_phrases_or_patterns_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "themes.yml"
    broken.write_text("物流:\n  phrases: []\n", encoding="utf-8")
    with pytest.raises(ValueError, match="物流"):
        load_themes(broken)


# --- the measurement ------------------------------------------------------------------------


def test_score_comments_counts_per_theme_and_micro() -> None:
    comments = [
        LabelledComment("a", frozenset({"物流"}), "negative"),
        LabelledComment("b", frozenset({"物流", "价格"}), "positive"),
        LabelledComment("c", frozenset(), "neutral"),
    ]
    answers = {
        "a": Analysis(("物流",), "negative", -0.5),
        "b": Analysis(("质量",), "positive", 0.5),
        "c": Analysis(("物流",), "positive", 0.2),
    }
    report = score_comments(comments, answers.__getitem__)
    logistics = report.themes[themes().index("物流")]
    assert (logistics.support, logistics.predicted, logistics.correct) == (2, 2, 1)
    assert logistics.precision == logistics.recall == 0.5
    assert (report.micro.support, report.micro.predicted, report.micro.correct) == (3, 3, 1)
    assert report.polarity_accuracy == pytest.approx(2 / 3)
    neutral = report.polarities[2]
    assert (neutral.label, neutral.recall, neutral.precision) == ("neutral", 0.0, None)
    assert [m.text for m in report.mistakes] == ["b", "c"]
    assert "| **micro** | 3 | 3 | 0.33 | 0.33 | 0.33 |" in to_markdown(report)


def test_labels_must_be_known_themes(tmp_path: Path) -> None:
    labelled = tmp_path / "bad.yml"
    labelled.write_text(
        "comments:\n  - {text: 快递慢, themes: [快递], polarity: negative}\n", encoding="utf-8"
    )
    with pytest.raises(ValueError, match="快递"):
        load_labelled(labelled)


def test_the_command_prints_markdown_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(HOLDOUT)]) == 0
    out = capsys.readouterr().out
    assert "| theme | labelled | predicted | precision | recall | F1 |" in out
    assert "Polarity accuracy" in out


# --- quality gates (numbers in docs/feedback.md) --------------------------------------------


def test_labelled_sets_are_big_enough() -> None:
    assert len(load_labelled(TUNING)) >= 80
    assert len(load_labelled(HOLDOUT)) >= 20


def test_quality_on_the_tuning_set() -> None:
    report = evaluate(TUNING)
    assert report.micro.f1 is not None and report.micro.f1 >= 0.80
    assert report.polarity_accuracy >= 0.80


def test_quality_on_the_held_out_set() -> None:
    """Never tuned on. Polarity measured 0.67 here: below the 0.70 we aimed for, see the docs."""
    report = evaluate(HOLDOUT)
    assert report.micro.f1 is not None and report.micro.f1 >= 0.70
    assert report.polarity_accuracy >= 0.60
