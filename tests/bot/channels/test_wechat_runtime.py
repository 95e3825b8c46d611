from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from rasa.shared.utils.io import read_config_file

from bot.channels.wechat.channel import WeChatInput
from bot.runtime import WECHAT_CHANNEL, credentials_config

ENV = {
    "CAREBOT_WECHAT_APP_ID": "wx_app",
    "CAREBOT_WECHAT_APP_SECRET": "s3cret",
    "CAREBOT_WECHAT_TOKEN": "tok",
    "CAREBOT_WECHAT_AES_KEY": "kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR",
    "CAREBOT_WECHAT_MENU": '{"ORDER": "/order_status"}',
}


def test_no_wechat_channel_without_an_app_id() -> None:
    assert WECHAT_CHANNEL not in credentials_config({})


def test_secrets_are_references_that_rasa_expands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "credentials.yml"
    path.write_text(yaml.safe_dump(credentials_config(ENV), allow_unicode=True))
    assert "s3cret" not in path.read_text()
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    section = read_config_file(str(path))[WECHAT_CHANNEL]
    channel = WeChatInput.from_credentials(section)
    assert channel.config.app_secret == "s3cret"
    assert channel.config.aes_key is not None
    assert channel.config.api_base_url == "https://api.weixin.qq.com"
    assert channel.config.menu == {"ORDER": "/order_status"}


def test_plain_mode_without_an_aes_key() -> None:
    env = {key: value for key, value in ENV.items() if key != "CAREBOT_WECHAT_AES_KEY"}
    assert "aes_key" not in credentials_config(env)[WECHAT_CHANNEL]
