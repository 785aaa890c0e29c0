"""Learning from corrections: the refit job's threshold, its cross-validated gate, promotion, rollback and lock.

A real (tiny, randomly initialised) transformer, real corrections made through ``correct_post``, the product's own
fitting code and a real database on both backends. The training features are pooled from labelled texts in the
tiny model's vocabulary; the labels follow a rule, so heads fitted on them can beat the untrained ones.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
import torch
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from classifier.base import PostFacts
from classifier.heads import Heads, VersionedScorer, pooled_texts
from classifier.pipeline import score_pending
from classifier.refit_job import (
    FEATURES_ENV,
    Corrections,
    RefitOptions,
    TrainingFeatures,
    fit_heads,
    run_refit,
)
from classifier.scorer import TransformerScorer
from ground.db import make_engine
from models.heads import NothingToRollBack, refit_lock
from models.store import save_posts
from models.tables import HeadsVersion, RefitAttempt, Score
from responder.corrections import correct_post
from responder.model_admin import model_view, rollback_heads
from responder.permissions import NotAllowed
from tests.support.factories import scored_post, staff
from tests.support.incoming import incoming
from tests.support.tiny_model import make_tiny_model

BAD = ["never arrived", "i'll sue you", "account was hacked", "awful", "nunca llegó", "los voy a demandar", "pésimo"]
GOOD = ["thanks", "great", "great help", "gracias", "genial", "ayuda gracias"]
FILL = ["the order", "my", "el pedido", "help", "query:", "@user", "http"]
OPTIONS = RefitOptions(min_corrections=8, folds=4, min_check=8)
_bosses = itertools.count(1)


def texts(n: int, seed: int) -> list[tuple[str, int]]:
    """``n`` texts in the tiny vocabulary, half complaints (label 1) and half thanks (label 0)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        bad = i % 2 == 0
        core = rng.choice(BAD if bad else GOOD)
        out.append((" ".join([rng.choice(FILL), core, rng.choice(FILL)]), int(bad)))
    return out


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-refit"))


@pytest.fixture
def scorer(tiny_dir: Path, engine: Engine) -> VersionedScorer:
    """A worker's scorer: the tiny transformer in PyTorch, following the database's heads versions."""
    return VersionedScorer(TransformerScorer.from_dir(tiny_dir, backend="torch"), engine, check_s=0.0)


@pytest.fixture(scope="module")
def plain(tiny_dir: Path) -> TransformerScorer:
    """The tiny transformer with its own (untrained) heads, never wrapped."""
    return TransformerScorer.from_dir(tiny_dir, backend="torch")


@pytest.fixture
def features(plain: TransformerScorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Training features of 120 labelled texts (and a calibration slice), where the job looks for them."""
    train, calib = texts(120, seed=1), texts(40, seed=2)
    x = pooled_texts(plain, [t for t, _ in train])
    y = torch.tensor([label for _, label in train])
    kx = pooled_texts(plain, [t for t, _ in calib])
    ky = torch.tensor([label for _, label in calib])
    # Sentiment: complaints negative (0), thanks positive (2); one neutral example so all three classes exist.
    sy = torch.where(y == 1, 0, 2)
    sy[0] = 1
    ksy = torch.where(ky == 1, 0, 2)
    path = tmp_path / "features.safetensors"
    langs = ["en"] * len(train)
    TrainingFeatures(x, y, x, sy, langs, kx, ky, kx, ksy, {"complaint": 0.03, "sentiment": 0.1}).save(path)
    monkeypatch.setenv(FEATURES_ENV, str(path))
    yield path


def correct(engine: Engine, labelled: Sequence[tuple[str, int]], *, flip: bool = False) -> None:
    """A manager corrects one post per text: needs a reply (and negative) for complaints, neither for thanks."""
    with Session(engine, expire_on_commit=False) as session:
        boss = staff(session, f"Boss {next(_bosses)}", role="manager")
        for text, label in labelled:
            wanted = bool(label) != flip
            # The model said the opposite, so that both fields change and each becomes a label.
            post = scored_post(session, text=text, sentiment="positive" if wanted else "negative")
            post.needs_response = not wanted
            session.add(post)
            session.commit()
            correct_post(
                session,
                post_id=post.id,  # type: ignore[arg-type]
                staff=boss,
                needs_response=wanted,
                sentiment="negative" if wanted else "positive",
            )
        session.commit()


def attempts(engine: Engine) -> list[RefitAttempt]:
    with Session(engine) as session:
        return list(session.execute(select(RefitAttempt).order_by(RefitAttempt.id)).scalars())


def active(engine: Engine) -> HeadsVersion | None:
    with Session(engine) as session:
        return session.execute(select(HeadsVersion).where(HeadsVersion.active)).scalar_one_or_none()


def test_below_the_threshold_the_job_does_nothing(engine: Engine, scorer: VersionedScorer, features: Path) -> None:
    correct(engine, texts(3, seed=3))  # 3 posts, 6 corrections: fewer than 8
    assert run_refit(engine, scorer, OPTIONS) is None
    assert attempts(engine) == [] and active(engine) is None
    assert scorer.model_id == scorer.base_model


def test_better_heads_are_promoted_and_every_scorer_uses_them(
    engine: Engine, scorer: VersionedScorer, features: Path, tiny_dir: Path, plain: TransformerScorer
) -> None:
    correct(engine, texts(12, seed=4))
    attempt = run_refit(engine, scorer, OPTIONS)
    assert attempt is not None and attempt.outcome == "promoted", attempt and attempt.reason
    assert attempt.figures["new"]["log_loss"] <= attempt.figures["old"]["log_loss"]
    assert attempt.n_corrections == 24 and attempt.new_corrections == 24
    version = active(engine)
    assert version is not None and attempt.heads_version_id == version.id
    expected = f"{scorer.base_model}+heads-{version.id}"
    assert scorer.model_id == expected == attempt.new_model_id
    # Another worker's scorer picks the version up from the database, and scores with it.
    other = VersionedScorer(TransformerScorer.from_dir(tiny_dir, backend="torch"), engine, check_s=0.0)
    text = "the order never arrived my"
    [new] = other.score([PostFacts(text=text)])
    [old] = plain.score([PostFacts(text=text)])
    assert other.model_id == expected and new.model_id == expected
    assert new.complaint != pytest.approx(old.complaint, abs=1e-3)
    heads = Heads.from_bytes(version.weights, version.temperatures)
    assert set(heads.temperatures) == {"complaint", "sentiment"}
    # Scores stored by the pipeline name the exact version.
    with Session(engine, expire_on_commit=False) as session:
        save_posts(session, [incoming("n1", "@Escucha the order never arrived", kind="mention")])
        session.commit()
        assert score_pending(session, other) == 1
        session.commit()
        models = set(session.execute(select(Score.model_id)).scalars())
    assert expected in models
    # Nothing new since: the next tick does nothing.
    assert run_refit(engine, scorer, OPTIONS) is None


def test_a_worse_refit_is_not_promoted(engine: Engine, scorer: VersionedScorer, features: Path) -> None:
    def backwards(train: TrainingFeatures, corrections: Corrections, idx: Sequence[int], weight: int) -> Heads:
        good = fit_heads(train, corrections, idx, weight)
        return Heads(-good.complaint_w, -good.complaint_b, -good.sentiment_w, -good.sentiment_b, good.temperatures)

    correct(engine, texts(12, seed=5))
    attempt = run_refit(engine, scorer, OPTIONS, fitter=backwards)
    assert attempt is not None and attempt.outcome == "kept"
    assert attempt.figures["new"]["log_loss"] > attempt.figures["old"]["log_loss"]
    assert active(engine) is None and scorer.model_id == scorer.base_model


def test_admin_rolls_back_and_an_agent_cannot(engine: Engine, scorer: VersionedScorer, features: Path) -> None:
    correct(engine, texts(12, seed=6))
    promoted = run_refit(engine, scorer, OPTIONS)
    assert promoted is not None and promoted.outcome == "promoted"
    with Session(engine, expire_on_commit=False) as session:
        agent = staff(session, "Agent Rollback", role="agent")
        admin = staff(session, "Admin Rollback", role="admin")
        with pytest.raises(NotAllowed):
            rollback_heads(session, actor=agent, base=scorer.base_model)
        session.rollback()
        back = rollback_heads(session, actor=admin, base=scorer.base_model)
        assert back.outcome == "rolled_back" and back.new_model_id == scorer.base_model
        assert back.actor == f"staff:{admin.id}"
        with pytest.raises(NothingToRollBack):
            rollback_heads(session, actor=admin, base=scorer.base_model)
        view = model_view(session)
        assert view.current[scorer.base_model] == scorer.base_model
        assert [a.outcome for a in view.attempts][:2] == ["rolled_back", "promoted"]
    assert active(engine) is None
    scorer.refresh(force=True)
    assert scorer.model_id == scorer.base_model


def test_a_version_worse_on_later_corrections_is_rolled_back(
    engine: Engine, scorer: VersionedScorer, features: Path
) -> None:
    correct(engine, texts(12, seed=7))
    first = run_refit(engine, scorer, OPTIONS)
    assert first is not None and first.outcome == "promoted"
    # Later corrections say the opposite of what the promoted heads learnt: they do worse than the heads before.
    correct(engine, texts(8, seed=8), flip=True)
    check = run_refit(engine, scorer, OPTIONS)
    assert check is not None and check.outcome == "rolled_back" and check.actor == "worker"
    assert check.figures["old"]["log_loss"] > check.figures["new"]["log_loss"]
    assert active(engine) is None and scorer.model_id == scorer.base_model


def test_missing_training_features_are_recorded_as_skipped(
    engine: Engine, scorer: VersionedScorer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FEATURES_ENV, str(tmp_path / "nowhere.safetensors"))
    correct(engine, texts(6, seed=9))
    attempt = run_refit(engine, scorer, OPTIONS)
    assert attempt is not None and attempt.outcome == "skipped"
    assert "nowhere.safetensors" in attempt.reason and "cache-features" in attempt.reason
    assert run_refit(engine, scorer, OPTIONS) is None  # recorded once, not on every tick
    (tmp_path / "bad.safetensors").write_bytes(b"not a features file")
    monkeypatch.setenv(FEATURES_ENV, str(tmp_path / "bad.safetensors"))
    correct(engine, texts(6, seed=10))
    attempt = run_refit(engine, scorer, OPTIONS)
    assert attempt is not None and attempt.outcome == "skipped" and "not a refit features file" in attempt.reason


def test_two_workers_never_refit_at_once(pg_url: str, tiny_dir: Path, features: Path) -> None:
    """On real PostgreSQL: while one worker holds the refit lock, another's run does nothing; then it runs."""
    engine = make_engine(pg_url)
    SQLModel.metadata.create_all(engine)
    try:
        scorer = VersionedScorer(TransformerScorer.from_dir(tiny_dir, backend="torch"), engine, check_s=0.0)
        correct(engine, texts(12, seed=11))
        with refit_lock(engine) as held:
            assert held
            assert run_refit(engine, scorer, OPTIONS) is None  # the other session holds the advisory lock
        # Two workers at once, each with its own scorer: one fits (slowly), the other finds the lock taken.
        started = threading.Barrier(2)
        results: list[RefitAttempt | None] = []

        def slow(train: TrainingFeatures, corrections: Corrections, idx: Sequence[int], weight: int) -> Heads:
            time.sleep(0.2)
            return fit_heads(train, corrections, idx, weight)

        def worker() -> None:
            mine = VersionedScorer(TransformerScorer.from_dir(tiny_dir, backend="torch"), engine, check_s=0.0)
            started.wait()
            results.append(run_refit(engine, mine, OPTIONS, fitter=slow))

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert sorted(r.outcome if r else "none" for r in results) == ["none", "promoted"]
        assert len(attempts(engine)) == 1
    finally:
        engine.dispose()


def test_the_worker_schedules_the_refit_job_in_the_classifier_role(engine: Engine) -> None:
    from classifier.lexicon_scorer import LexiconScorer
    from worker.scheduler import ROLE_STAGES, Worker

    assert "refit" in ROLE_STAGES["classifier"] and "refit" not in ROLE_STAGES["responder"]
    worker = Worker(engine, listeners=[], senders={}, scorer=LexiconScorer())
    assert worker.refit() is None  # the lexicon baseline has no heads to refit
    scheduler = worker.start(intervals={}, stage_seconds=1.0, role="classifier", paused=True)
    try:
        job = scheduler.get_job("refit", jobstore="stages")
        assert job is not None and job.trigger.interval.total_seconds() >= 600
    finally:
        worker.stop()
