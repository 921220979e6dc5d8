"""Rewrite the committed openapi.json from the code, on the app's defaults (``make openapi``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.routes.docs import canonical_document, render  # noqa: E402 (after the path fix)


def main() -> None:
    """Write openapi.json at the repository root."""
    (ROOT / "openapi.json").write_text(render(canonical_document()), encoding="utf-8")


if __name__ == "__main__":
    main()
