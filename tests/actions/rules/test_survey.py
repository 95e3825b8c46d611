from __future__ import annotations

import pytest

from actions.rules.survey import (
    CSAT_MAX,
    CSAT_MIN,
    CSAT_WORDS,
    NPS_MAX,
    NPS_MIN,
    SKIP_WORDS,
    ScoreReading,
    is_detractor,
    nps_group,
    parse_comment,
    parse_csat,
    parse_nps,
    reads_as_request,
)


def score(value: int) -> ScoreReading:
    return ScoreReading("score", value)


def out_of_range(value: int) -> ScoreReading:
    return ScoreReading("out_of_range", value)


UNCLEAR = ScoreReading("unclear")
SKIP = ScoreReading("skip")


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        # buttons and digits
        ("4", score(4)),
        ("４", score(4)),  # full-width
        ("5分", score(5)),
        ("4 分吧", score(4)),
        ("4星", score(4)),
        ("4/5", score(4)),
        ("4️⃣", score(4)),  # keycap emoji
        ("5份", score(5)),  # 份 typed for 分
        ("给你们打5分！", score(5)),
        ("1星差评", score(1)),
        # stars
        ("★★★★", score(4)),
        ("⭐⭐⭐", score(3)),
        ("⭐️⭐️⭐️⭐️⭐️", score(5)),
        ("★★★★☆", score(4)),  # the empty star is not counted
        # Chinese numerals
        ("四星", score(4)),
        ("五分", score(5)),
        ("打个三分", score(3)),
        ("给五吧", score(5)),
        ("两颗星", score(2)),
        ("一颗星都不想给", score(1)),
        ("五星好评", score(5)),
        ("五分之四", score(4)),
        ("满分", score(5)),
        ("满分五星好评！", score(5)),
        # words
        ("非常满意", score(5)),
        ("非常满意！！", score(5)),
        ("十分满意", score(5)),  # 十分 is "very" here, not ten points
        ("百分百满意", score(5)),
        ("满意", score(4)),
        ("挺好的", score(4)),
        ("不错哦", score(4)),
        ("还不错吧", score(4)),
        ("客服回复挺快的👍", score(4)),
        ("一般", score(3)),
        ("一般般吧", score(3)),
        ("还行", score(3)),
        ("凑合", score(3)),
        ("还凑和", score(3)),  # common misspelling of 凑合
        ("差不多吧", score(3)),  # not 差
        ("不满意", score(2)),  # negation: not 满意
        ("不太满意", score(2)),
        ("不是很满意", score(2)),
        ("非常不满意", score(1)),
        ("一点都不满意", score(1)),
        ("很差", score(1)),
        ("垃圾", score(1)),
        ("十分钟才回我，不满意", score(2)),  # 十分钟 is not a score
        # Traditional
        ("非常滿意", score(5)),
        ("不滿意", score(2)),
        ("還不錯", score(4)),
        ("湊合吧", score(3)),
        ("四顆星", score(4)),
        # mixed: an explicit number wins over words
        ("还行吧 4星", score(4)),
        ("一般吧，3分", score(3)),
        ("不太满意，2分", score(2)),
        ("等了3天，2分", score(2)),  # a unit beats a bare number
        ("算了，3分吧", score(3)),  # a score beats the skip word
        # several words: the most extreme on one side; both sides are unclear
        ("挺好的，非常满意", score(5)),
        ("还行，挺好", score(4)),
        ("满意但是物流很差", UNCLEAR),
        # out of range
        ("6", out_of_range(6)),
        ("0分", out_of_range(0)),
        ("十分", out_of_range(10)),
        ("10分", out_of_range(10)),
        ("100分！", out_of_range(100)),
        ("-1", out_of_range(-1)),
        # unclear
        ("随便", UNCLEAR),
        ("abc", UNCLEAR),
        ("", UNCLEAR),
        ("   ", UNCLEAR),
        ("😂", UNCLEAR),
        ("4.5", UNCLEAR),  # no rounding: the form asks again
        ("4-5分", UNCLEAR),
        ("3到4分吧", UNCLEAR),
        ("★★★ 5分", UNCLEAR),
        ("8/10", UNCLEAR),  # not the CSAT scale
        ("你们的退货地址是哪里", UNCLEAR),
        # skip
        ("跳过", SKIP),
        ("跳過", SKIP),
        ("不想答", SKIP),
        ("不想回答", SKIP),
        ("算了", SKIP),
        ("stop", SKIP),
        ("STOP", SKIP),
        ("skip", SKIP),
        ("下次吧", SKIP),
        ("不评价", SKIP),
        ("可以跳过吗", SKIP),  # not the word 可以
    ],
)
def test_parse_csat(text: str, reading: ScoreReading) -> None:
    assert parse_csat(text) == reading


@pytest.mark.parametrize(
    ("text", "reading"),
    [
        ("9", score(9)),
        ("９", score(9)),
        ("0", score(0)),
        ("10", score(10)),
        ("🔟", score(10)),
        ("打8分吧", score(8)),
        ("给个9吧", score(9)),
        ("6分吧", score(6)),
        ("打个五分", score(5)),
        ("十分", score(10)),
        ("十分!", score(10)),
        ("10分", score(10)),
        ("满分", score(10)),
        ("給滿分", score(10)),
        ("零分", score(0)),
        ("8/10", score(8)),
        ("满分10分我给8分", score(8)),
        ("10分里打7分", score(7)),
        ("七", score(7)),
        ("7.5", UNCLEAR),
        ("8.0", score(8)),
        ("8、9分", UNCLEAR),
        ("八九分", UNCLEAR),
        ("11", out_of_range(11)),
        ("一百分", out_of_range(100)),
        ("100", out_of_range(100)),
        ("非常愿意推荐", UNCLEAR),  # NPS needs a number
        ("十分愿意", UNCLEAR),
        ("不推荐", UNCLEAR),
        ("⭐⭐⭐⭐⭐", UNCLEAR),  # five stars of ten? asked again
        ("不想回答", SKIP),
        ("skip", SKIP),
        ("下次再说吧", SKIP),
    ],
)
def test_parse_nps(text: str, reading: ScoreReading) -> None:
    assert parse_nps(text) == reading


@pytest.mark.parametrize("word", SKIP_WORDS)
def test_every_skip_word_skips_both_questions(word: str) -> None:
    assert parse_csat(word) == SKIP
    assert parse_nps(f"{word}吧") == SKIP


@pytest.mark.parametrize(("word", "value"), sorted(CSAT_WORDS.items()))
def test_every_csat_word_reads_as_its_score(word: str, value: int) -> None:
    assert parse_csat(word) == score(value)


@pytest.mark.parametrize("value", range(CSAT_MIN, CSAT_MAX + 1))
def test_every_csat_button(value: int) -> None:
    assert parse_csat(str(value)) == score(value)


@pytest.mark.parametrize("value", range(NPS_MIN, NPS_MAX + 1))
def test_every_nps_button(value: int) -> None:
    assert parse_nps(str(value)) == score(value)


@pytest.mark.parametrize(
    ("text", "comment"),
    [
        ("物流太慢了", "物流太慢了"),
        ("  客服很耐心  ", "客服很耐心"),
        ("没有", None),
        ("没有了。", None),
        ("无", None),
        ("no", None),
        ("跳过", None),
        ("不用了谢谢", None),
        ("...", None),
        ("", None),
    ],
)
def test_parse_comment(text: str, comment: str | None) -> None:
    assert parse_comment(text) == comment


@pytest.mark.parametrize(
    ("csat", "nps", "detractor"),
    [
        (1, None, True),
        (2, 9, True),
        (3, None, False),
        (None, 6, True),
        (5, 0, True),
        (4, 7, False),
        (None, 10, False),
        (None, None, False),
    ],
)
def test_is_detractor(csat: int | None, nps: int | None, detractor: bool) -> None:
    assert is_detractor(csat, nps) is detractor


@pytest.mark.parametrize(
    ("nps", "group"),
    [
        (0, "detractor"),
        (6, "detractor"),
        (7, "passive"),
        (8, "passive"),
        (9, "promoter"),
        (10, "promoter"),
    ],
)
def test_nps_group(nps: int, group: str) -> None:
    assert nps_group(nps) == group


@pytest.mark.parametrize("nps", [-1, 11])
def test_nps_group_rejects_out_of_range(nps: int) -> None:
    with pytest.raises(ValueError):
        nps_group(nps)


@pytest.mark.parametrize(
    "text",
    [
        "我的快递到哪了？",
        "积分还有多少",
        "帮我查一下订单",
        "你们几点关门",
        "能不能退货",
        "我想退货",
        "优惠券怎么用",
        "是机器人吗",
    ],
)
def test_a_question_or_a_request_reads_as_a_request(text: str) -> None:
    assert reads_as_request(text)


@pytest.mark.parametrize(
    "text",
    [
        "快递太慢了",
        "快递太慢了3f9a1c",
        "积分兑换的东西质量一般",
        "退货流程很顺利，点赞",
        "我想说客服很耐心",
        "门店的服务很好",
    ],
)
def test_a_statement_about_an_order_or_points_is_a_comment(text: str) -> None:
    assert not reads_as_request(text)
