from __future__ import annotations

from pathlib import Path

from bot.settings import load_settings


def test_defaults_are_the_embedded_setup(tmp_path: Path) -> None:
    settings = load_settings({"CAREBOT_VAR_DIR": str(tmp_path)})
    assert settings.database_url == f"sqlite:///{tmp_path / 'crm.db'}"
    assert settings.rasa_url == "http://127.0.0.1:5005"
    assert settings.action_url == "http://127.0.0.1:5055/webhook"
    assert settings.redis_url is None


def test_the_generated_api_token_survives_a_restart(tmp_path: Path) -> None:
    first = load_settings({"CAREBOT_VAR_DIR": str(tmp_path)}).api_token
    second = load_settings({"CAREBOT_VAR_DIR": str(tmp_path)}).api_token
    assert first == second and len(first) >= 24
    assert (tmp_path / "api_token").stat().st_mode & 0o077 == 0


def test_environment_overrides(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "CAREBOT_VAR_DIR": str(tmp_path),
            "CAREBOT_RASA_PORT": "6005",
            "CAREBOT_API_TOKEN": "secret",
            "CAREBOT_DATABASE_URL": "postgresql://127.0.0.1/test",
            "CAREBOT_REDIS_URL": "redis://127.0.0.1:6379/2",
        }
    )
    assert settings.rasa_port == 6005 and settings.api_token == "secret"
    assert settings.database_url == "postgresql://127.0.0.1/test"
    assert settings.redis_url == "redis://127.0.0.1:6379/2"
