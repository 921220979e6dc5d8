"""Rewrite .env.example and README's settings table from api/settings.py (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.settings import env_example, settings_table  # noqa: E402 (after the path fix)

START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def main() -> None:
    """Write both files in place."""
    (ROOT / ".env.example").write_text(env_example())
    readme = ROOT / "README.md"
    head, rest = readme.read_text().split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{settings_table()}\n{END}{tail}")


if __name__ == "__main__":
    main()
