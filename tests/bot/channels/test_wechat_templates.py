from __future__ import annotations

import pytest

from bot.channels.wechat.templates import TemplateConfig, field_limit, fit


@pytest.mark.parametrize(
    ("field", "limit"),
    [("thing1", 20), ("thing12", 20), ("character_string3", 32), ("phrase2", 5), ("keyword1", 200)],
)
def test_field_limits_follow_the_field_kind(field: str, limit: int) -> None:
    assert field_limit(field) == limit


def test_short_text_is_kept_on_one_line() -> None:
    assert fit("您好，\n  您的订单已发货", 20) == "您好， 您的订单已发货"


def test_long_text_is_cut_with_an_ellipsis_at_the_limit() -> None:
    fitted = fit("会员您好，您本月的积分即将过期，请尽快使用以免损失", 20)
    assert len(fitted) == 20
    assert fitted == "会员您好，您本月的积分即将过期，请尽快…"


def test_no_template_without_a_template_id() -> None:
    assert TemplateConfig.from_credentials({"template_field": "thing2"}) is None


def test_body_fills_the_configured_field_and_url() -> None:
    config = TemplateConfig.from_credentials(
        {"template_id": "TPL", "template_field": "thing2", "template_url": "https://x/chat"}
    )
    assert config is not None
    assert config.body("oUSER", "您的会员积分即将过期，请及时使用，谢谢您的支持") == {
        "touser": "oUSER",
        "template_id": "TPL",
        "url": "https://x/chat",
        "data": {"thing2": {"value": "您的会员积分即将过期，请及时使用，谢谢…"}},
    }


def test_defaults_and_an_explicit_limit() -> None:
    default = TemplateConfig.from_credentials({"template_id": "TPL"})
    assert default is not None
    assert (default.field, default.limit, default.url) == ("thing1", 20, None)
    assert "url" not in default.body("o", "x")
    wide = TemplateConfig.from_credentials({"template_id": "TPL", "template_field_limit": "100"})
    assert wide is not None and wide.limit == 100
    with pytest.raises(ValueError, match="limit"):
        TemplateConfig.from_credentials({"template_id": "TPL", "template_field_limit": -1})
