"""Issue 15: masking rules and spreadsheet-safe CSV cells (plain functions, no database)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from bot.reports.render import render_survey_report, to_csv
from crm_store.dashboard.survey_report import SurveyReport
from crm_store.dashboard.surveys import Comment, SurveyFigures
from crm_store.masking import (
    alias,
    mask_email,
    mask_log_text,
    mask_name,
    mask_phone,
    mask_text,
    spreadsheet_safe,
)

AT = datetime(2026, 11, 2, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text",
    [
        "13800138000",
        "电话13800138000谢谢",
        "+86 138 0013 8000",
        "0086-138-0013-8000",
        "138-0013-8000",
    ],
)
def test_mainland_mobiles_are_masked_in_any_spelling(text: str) -> None:
    masked = mask_text(text)
    assert "138****8000" in masked and "0013" not in masked


def test_what_is_not_a_mobile_stays() -> None:
    for text in ("订单DD202611020387", "积分12990", "23800138000", "138001380001"):
        assert mask_text(text) == text


def test_identity_cards_emails_and_sessions_are_masked() -> None:
    text = "身份证11010519491231002X 邮箱zhao.li@example.com 会话web-" + "0f" * 16
    masked = mask_text(text)
    assert "110105********002X" in masked and "z***@example.com" in masked
    assert "0f0f" not in masked and alias("web-" + "0f" * 16) in masked


def test_aliases_are_short_stable_and_not_the_id() -> None:
    session = "web-" + "ab" * 16
    assert alias(session) == alias(session) != alias("web-" + "cd" * 16)
    assert alias(session).startswith("web~") and "abab" not in alias(session)
    assert alias("o_demo_openid").startswith("id~")


def test_fields_mask_to_what_an_agent_needs() -> None:
    assert mask_phone("13800138000") == "138****8000"
    assert mask_phone(None) == "" and mask_phone("12345") == "***45"
    assert mask_name("王小明") == "王**" and mask_name("王") == "王*"
    assert mask_email("wang@example.com") == "w***@example.com"


def test_logs_also_lose_one_time_codes_but_keep_other_numbers() -> None:
    line = "SMS stub: one-time code 482913 to 13800138000; order DD202611020387 port 5005"
    masked = mask_log_text(line)
    assert "482913" not in masked and "13800138000" not in masked
    assert "DD202611020387" in masked and "5005" in masked
    assert mask_log_text("Received user message '482913'") == "Received user message '******'"


@pytest.mark.parametrize("cell", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=1", "\r=1"])
def test_formula_cells_are_neutralised(cell: str) -> None:
    assert spreadsheet_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-3", "-0.25", "好评", "", "1=1"])
def test_plain_cells_stay(cell: str) -> None:
    assert spreadsheet_safe(cell) == cell


def test_dashboard_csv_neutralises_a_comment_that_is_a_formula() -> None:
    comment = Comment(
        "survey", 1, AT, "web", 7, 1, 0, '=HYPERLINK("http://x","点我")', ("@质量",), "negative"
    )
    rows = list(csv.reader(io.StringIO(to_csv([comment], Comment).lstrip("\ufeff"))))
    assert rows[1][7] == '\'=HYPERLINK("http://x","点我")'
    assert rows[1][8] == "'@质量"
    assert rows[1][6] == "0"


def test_survey_report_csv_neutralises_group_and_theme_cells() -> None:
    figures = SurveyFigures("=cmd", 1, 1, 0, 0, 0, 1.0, 1, 5.0, 1.0, 0, 0, 0, 0, None)
    report = SurveyReport(AT, AT, "agent", [figures], [("-bad theme", 1)])
    text = render_survey_report(report, "csv")
    assert "\n'=cmd," in text and "'-bad theme,1" in text
