"""The `escucha` command line."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from ground.db import get_engine
from ground.logs import setup_logging
from ground.settings import get_settings
from models.schema import migrate

app = typer.Typer(help="Escucha: the social-media listening and response desk.", no_args_is_help=True)
log = logging.getLogger("escucha")


@app.callback()
def main(log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO") -> None:
    """Set up logging for every command."""
    setup_logging(log_level)


@app.command("init-db")
def init_db() -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    migrate(get_engine())
    typer.echo("database is at the latest schema")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Show what was ingested, scored, assigned and answered, and each source's health."""
    from responder.status import collect_status

    engine = get_engine()
    migrate(engine)
    with Session(engine) as session:
        report = collect_status(session, get_settings())
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
        return
    console = Console()
    table = Table("what", "value", title="Escucha status")
    for key, value in report.items():
        if key != "sources":
            table.add_row(key, json.dumps(value) if isinstance(value, dict) else str(value))
    console.print(table)
    sources = Table("network", "source", "healthy", "ingested", "last success", "last error", "next run", "quota",
                    title="Sources")  # fmt: skip
    for s in report["sources"]:
        quota = ", ".join(f"{q['remaining']}/{q['limit']}" for q in s["rate_limits"].values()) or "-"
        sources.add_row(
            s["network"], s["source"], str(s["healthy"]), str(s["posts_ingested"]),
            s["last_success_at"] or "-", s["last_error"] or "-",
            (s["next_run_at"] or "-") + (f" ({s['throttled']})" if s["throttled"] else ""), quota,
        )  # fmt: skip
    console.print(sources)


@app.command()
def worker(
    role: Annotated[
        str,
        typer.Option(
            help="Which jobs this process runs: listeners (poll jobs), classifier (score), "
            "responder (assign, care/SLA, send) or all; several joined with + (classifier+responder) share one "
            "process. Run several processes on PostgreSQL to scale out.",
        ),
    ] = "all",
) -> None:
    """Run the scheduler: listeners, classifier, responder and outbox, until stopped."""
    from classifier.lexicon_scorer import LexiconScorer
    from classifier.registry import load_scorer
    from worker.scheduler import ROLES, Worker, care_options, role_parts, stage_intervals

    try:
        parts = role_parts(role)
    except ValueError as exc:
        raise typer.BadParameter(
            f"expected one of {', '.join(ROLES)}, or several joined with +", param_hint="--role"
        ) from exc
    from listeners.budget import ReadBudget
    from networks.registry import NETWORKS, build_listeners, build_senders, poll_intervals

    settings = get_settings()
    engine = get_engine()
    migrate(engine)
    listeners = build_listeners(settings)
    if not listeners and "listeners" in parts:
        log.warning("no network credentials configured: nothing to poll (see README, 'Configuration')")
    # Only a process that scores loads the transformer (over 1 GB); the others never call the scorer.
    scorer = load_scorer() if "classifier" in parts else LexiconScorer()
    budgets = {name: ReadBudget.of(spec.settings_of(settings)) for name, spec in NETWORKS.items()}
    w = Worker(
        engine, listeners=listeners, senders=build_senders(settings), scorer=scorer,
        batch_size=settings.batch_size, budgets=budgets,
        verify_retries=settings.fetch_retries, care_options=care_options(settings),
        sending_lease=timedelta(seconds=settings.sending_lease_seconds),
    )  # fmt: skip
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    w.start(
        intervals=poll_intervals(settings, listeners),
        stage_seconds=stage_intervals(settings),
        persistent=settings.persistent_jobs,
        role=role,
    )
    log.info("worker (%s) running with %d sources; Ctrl-C stops it", role, len(listeners))
    done.wait()
    w.stop()


bench_app = typer.Typer(help="Measure Escucha's throughput against the sandbox networks.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


user_app = typer.Typer(help="Staff who sign in to the review app.", no_args_is_help=True)
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    email: Annotated[str, typer.Option(help="Sign-in e-mail.")],
    role: Annotated[str, typer.Option(help="admin, manager, agent or marketing.")],
    name: Annotated[str | None, typer.Option(help="Display name (default: the e-mail's user part).")] = None,
    languages: Annotated[str, typer.Option(help="Languages they answer in, e.g. es,en.")] = "es,en",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Asked for when not given.")
    ] = "",
) -> None:
    """Add a staff member who signs in with a password (stored only as an argon2 hash)."""
    from models.auth import WeakPassword, create_user
    from models.tables import Role

    if role not in set(Role):
        raise typer.BadParameter(f"role must be one of {', '.join(Role)}", param_hint="--role")
    engine = get_engine()
    migrate(engine)
    with Session(engine) as session:
        try:
            member = create_user(
                session,
                name=name or email.split("@")[0],
                email=email,
                role=role,
                password=password,
                languages=languages,
            )
        except WeakPassword as exc:
            raise typer.BadParameter(str(exc), param_hint="--password") from exc
        except ValueError as exc:  # a blank name, not an e-mail, one already taken, bad language codes
            raise typer.BadParameter(str(exc)) from exc
        typer.echo(f"added {member.email} ({member.role}), id {member.id}")


@app.command()
def review(port: Annotated[int, typer.Option(help="Port of the review app.")] = 8501) -> None:
    """Open the Streamlit review app on the configured database."""
    from review_app.launch import serve, streamlit_command

    # SIGTERM or Ctrl-C stops the Streamlit server too: an orphan kept serving and holding database connections.
    raise typer.Exit(serve(streamlit_command(port=port)))


@app.command()
def demo(
    headless: Annotated[bool, typer.Option(help="Run without the review app.")] = False,
    seconds: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    port: Annotated[int, typer.Option(help="Port of the review app.")] = 8501,
) -> None:
    """Run everything on SQLite against the loopback sandbox networks, and open the review app."""
    from demo.run import run_demo

    raise typer.Exit(run_demo(get_settings(), headless=headless, seconds=seconds, port=port))


# The classifier's commands (train, evaluate, score) live in their own module.
from escucha.classifier_cli import register as register_classifier  # noqa: E402

register_classifier(app)

# Every `escucha bench …` command lives with the benches.
from benches.commands import register as register_benches  # noqa: E402

register_benches(bench_app)


if __name__ == "__main__":
    app()
