from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rasa.shared.utils.io import read_config_file

from bot.channels.wechat.channel import WeChatInput
from bot.runtime import WECHAT_CHANNEL, rasa_server, wechat_credentials
from bot.settings import load_settings

ENV = {
    "CAREBOT_WECHAT_APP_ID": "wx_app",
    "CAREBOT_WECHAT_APP_SECRET": "s3cret",
    "CAREBOT_WECHAT_TOKEN": "tok",
    "CAREBOT_WECHAT_AES_KEY": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    "CAREBOT_WECHAT_MENU": '{"ORDER": "/order_status"}',
    "CAREBOT_WECHAT_LINK_SECRET": "link-s3cret",
    "CAREBOT_WECHAT_TEMPLATE_ID": "TPL_CARE",
    "CAREBOT_WECHAT_TEMPLATE_FIELD": "thing2",
    "CAREBOT_WECHAT_TEMPLATE_URL": "https://care.example/chat",
    "CAREBOT_WECHAT_REPLAY_WINDOW": "120",
    "CAREBOT_DATABASE_URL": "postgresql://care:db-s3cret@db/crm",
    "CAREBOT_REDIS_URL": "redis://:r3dis-s3cret@cache:6379/0",
}


def test_no_wechat_channel_without_an_app_id() -> None:
    assert wechat_credentials({}) is None


def test_secrets_are_references_that_rasa_expands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "credentials.yml"
    section = {WECHAT_CHANNEL: wechat_credentials(ENV)}
    path.write_text(yaml.safe_dump(section, allow_unicode=True))
    assert "s3cret" not in path.read_text()  # app secret, link secret, database password
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    section = read_config_file(str(path))[WECHAT_CHANNEL]
    channel = WeChatInput.from_credentials(section)
    assert channel.config.app_secret == "s3cret"
    assert channel.config.aes_key is not None
    assert channel.config.api_base_url == "https://api.weixin.qq.com"
    assert channel.config.menu == {"ORDER": "/order_status"}
    assert channel.config.database_url == "postgresql://care:db-s3cret@db/crm"
    assert channel.config.link_secret == "link-s3cret"
    assert channel.config.redis_url == "redis://:r3dis-s3cret@cache:6379/0"
    assert channel.config.replay_window == 120
    template = channel.config.template
    assert template is not None
    assert (template.template_id, template.field, template.limit, template.url) == (
        "TPL_CARE",
        "thing2",
        20,
        "https://care.example/chat",
    )


def test_plain_mode_without_an_aes_key_only_when_allowed() -> None:
    env = {key: value for key, value in ENV.items() if key != "CAREBOT_WECHAT_AES_KEY"}
    assert "aes_key" not in wechat_credentials(env)
    assert "allow_plain_mode" not in wechat_credentials(env)
    allowed = wechat_credentials({**env, "CAREBOT_WECHAT_ALLOW_PLAIN_MODE": "1"})
    assert allowed["allow_plain_mode"] == "1"


def test_optional_settings_are_left_out_when_unset() -> None:
    env = {key: ENV[key] for key in ("CAREBOT_WECHAT_APP_ID", "CAREBOT_WECHAT_APP_SECRET")}
    section = wechat_credentials({**env, "CAREBOT_WECHAT_TOKEN": "tok"})
    assert section["database_url"] == "${CAREBOT_DATABASE_URL}"
    assert not {"link_secret", "redis_url", "template_id", "replay_window"} & set(section)
    assert "allow_plain_mode" not in section


def test_the_rasa_server_gets_the_crm_database_url(tmp_path: Path) -> None:
    settings = load_settings(
        {"CAREBOT_VAR_DIR": str(tmp_path), "CAREBOT_DATABASE_URL": "sqlite:///x.db"}
    )
    service = rasa_server(settings, tmp_path / "m.tar.gz", tmp_path / "e.yml", tmp_path / "c.yml")
    assert service.env["CAREBOT_DATABASE_URL"] == "sqlite:///x.db"
