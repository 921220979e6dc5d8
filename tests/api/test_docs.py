"""README's settings table and .env.example stay in step with api/settings.py."""

from __future__ import annotations

from pathlib import Path

from api.settings import SETTINGS, env_example, settings_table

ROOT = Path(__file__).resolve().parents[2]


def test_readme_has_the_current_settings_table() -> None:
    readme = (ROOT / "README.md").read_text()
    assert settings_table() in readme, "run `make docs` to refresh README.md"


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    assert text == env_example(), "run `make docs` to refresh .env.example"
    assert all(f"# {setting.name}=" in text for setting in SETTINGS)


def test_env_example_holds_no_secret_values() -> None:
    for setting in SETTINGS:
        if setting.secret:
            assert setting.default in (None, ""), setting.name
