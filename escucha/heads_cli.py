"""``escucha heads …``: heads refitted on staff corrections (status, cache the training features, refit, roll back)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session

heads_app = typer.Typer(help="Heads refitted on staff corrections: status, refit, rollback.", no_args_is_help=True)


def _attempt_json(attempt: Any) -> dict[str, Any]:
    """One attempt as the JSON the commands print."""
    return {
        "id": attempt.id,
        "at": attempt.started_at.isoformat(),
        "actor": attempt.actor,
        "outcome": attempt.outcome,
        "reason": attempt.reason,
        "n_corrections": attempt.n_corrections,
        "new_corrections": attempt.new_corrections,
        "old_model_id": attempt.old_model_id,
        "new_model_id": attempt.new_model_id,
        "figures": attempt.figures,
    }


def _scorer(engine: Engine) -> Any:
    """The shipped transformer following the database's heads versions, or a clear refusal."""
    from classifier.heads import VersionedScorer, versioned
    from classifier.registry import load_transformer

    try:
        scorer = versioned(load_transformer(), engine)
    except Exception as exc:
        typer.echo(f"error: the transformer did not load: {exc}", err=True)
        raise typer.Exit(2) from exc
    if not isinstance(scorer, VersionedScorer):
        typer.echo("error: only the transformer scorer has heads to refit", err=True)
        raise typer.Exit(2)
    scorer.refresh(force=True)
    return scorer


def register(app: typer.Typer, database: Callable[..., Engine]) -> None:
    """Mount ``escucha heads`` on ``app``; ``database`` opens the configured database (checked schema)."""
    app.add_typer(heads_app, name="heads")

    @heads_app.command("status")
    def status(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
        """Which heads version scores now, and the latest refit attempts."""
        from classifier.registry import DEFAULT_MODEL
        from models.heads import active_version, attempts, model_id_of

        engine = database(read_only=True)
        with Session(engine) as session:
            active = active_version(session, DEFAULT_MODEL)
            report: dict[str, Any] = {
                "model_id": model_id_of(DEFAULT_MODEL, active.id if active is not None else None),
                "attempts": [_attempt_json(a) for a in attempts(session, DEFAULT_MODEL)],
            }
        if as_json:
            typer.echo(json.dumps(report, sort_keys=True))
            return
        typer.echo(f"scoring with {report['model_id']}")
        for a in report["attempts"]:
            typer.echo(f"{a['at']} {a['outcome']} ({a['actor']}, {a['n_corrections']} corrections): {a['reason']}")

    @heads_app.command("rollback")
    def rollback_command(
        reason: Annotated[str, typer.Option(help="Why (kept with the attempt).")] = "rolled back by hand",
    ) -> None:
        """Go back to the heads version before the active one (or the shipped heads)."""
        from classifier.registry import DEFAULT_MODEL
        from models.heads import NothingToRollBack, rollback

        engine = database(read_only=False)
        with Session(engine) as session:
            try:
                attempt = rollback(session, base=DEFAULT_MODEL, actor="cli", reason=reason)
            except NothingToRollBack as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from exc
            session.commit()
            typer.echo(json.dumps(_attempt_json(attempt), sort_keys=True))

    @heads_app.command("cache-features")
    def cache_features_command(
        data_dir: Annotated[
            Path | None, typer.Option(help="The training corpora (default: $ESCUCHA_DATA_DIR).")
        ] = None,
    ) -> None:
        """Pool the training corpora once with the shipped encoder, for the refit job (≈3 min on 2 busy cores)."""
        from classifier.refit_job import cache_features
        from ground.settings import get_settings

        corpora = data_dir or get_settings().data_dir
        if corpora is None or not corpora.is_dir():
            typer.echo("error: pass --data-dir DIR or set ESCUCHA_DATA_DIR", err=True)
            raise typer.Exit(2)
        engine = database(read_only=True)
        typer.echo(str(cache_features(_scorer(engine), corpora)))

    @heads_app.command("refit")
    def refit_command(
        min_corrections: Annotated[int, typer.Option(help="New corrections needed.", min=2)] = 50,
    ) -> None:
        """Run one pass of the refit job now (the worker runs it on its own schedule)."""
        from classifier.refit_job import RefitOptions, run_refit

        engine = database(read_only=False)
        attempt = run_refit(engine, _scorer(engine), RefitOptions(min_corrections=min_corrections), actor="cli")
        typer.echo(json.dumps(_attempt_json(attempt) if attempt is not None else {"outcome": "nothing to do"}))
