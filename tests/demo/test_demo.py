"""`escucha demo --headless` then `escucha status --json`, as a person runs them, in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_headless_demo_ingests_scores_and_assigns_everything(tmp_path: Path) -> None:
    # Nothing beside the checkout: the demo seeds from the texts shipped in the repo.
    env = {
        **{k: v for k, v in os.environ.items() if k != "ESCUCHA_DATA_DIR"},
        "ESCUCHA_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}",
    }
    escucha = [sys.executable, "-m", "escucha.cli"]
    run = subprocess.run([*escucha, "demo", "--headless", "--seconds", "40"], env=env, capture_output=True,
                         text=True, timeout=240, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = subprocess.run([*escucha, "status", "--json"], env=env, capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    status = json.loads(out.stdout)
    # On failure, say what each source did: the demo's own log and the sources' health tell why.
    why = json.dumps(status["sources"], indent=1) + run.stderr[-2000:]
    assert status["posts_by_network"].get("x", 0) > 50 and status["posts_by_network"].get("facebook", 0) > 50, why
    assert {"mention", "dm", "comment"} <= set(status["posts_by_kind"]), why
    assert status["scored"] + status["own_not_scored"] == status["posts"] and status["unscored"] == 0
    assert status["posts_by_kind"].get("own", 0) == status["own_not_scored"]  # our replies: never scored
    assert status["needing_response"] > 0 and status["assigned"] > 0
    assert status["unassigned_public"] == 0
    assert status["replies_by_state"].get("suggested", 0) > 0
    # Tokens never reach the output a person or a log collector sees.
    assert "sandbox-x-token" not in run.stderr + run.stdout + out.stdout
