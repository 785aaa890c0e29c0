"""Where the tests find their data: recorded network fixtures in the repo, training corpora beside it."""

from __future__ import annotations

import os
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
# Real recorded X and Graph API responses, with their licences (tests/fixtures/README.md).
FIXTURES = TESTS / "fixtures"
# The labelled training corpora are not ours to redistribute: they stay outside the repo (../shared/data in CI).
DATA = Path(os.environ.get("ESCUCHA_DATA_DIR", TESTS.parents[1] / "shared" / "data"))


def require_corpus(path: Path) -> Path:
    """Skip loudly when a training corpus is missing (a fresh clone); under CI, where it is present, fail."""
    import pytest

    if not path.is_file():
        why = f"the training corpus {path} is missing (set ESCUCHA_DATA_DIR; see docs/design.md)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {why}", pytrace=False)
        pytest.skip(f"!!! SKIPPED: {why}")
    return path
