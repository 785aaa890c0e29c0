"""The `escucha` command line."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import timedelta
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.core import TyperGroup

from ground.db import check_reachable, get_engine
from ground.errors import UserError
from ground.logs import setup_logging
from ground.redact import redact
from ground.settings import get_settings, settings_problem
from models.schema import migrate, require_schema

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
log = logging.getLogger("escucha")


class _Run:
    """What the global options said for this invocation (``--debug``), read when a command fails."""

    debug = False


def _describe(exc: Exception) -> tuple[str, int]:
    """One line and an exit code for an error that reached the top: the user's to fix, or ours (--debug)."""
    if isinstance(exc, ValidationError):
        return settings_problem(exc, _env_prefix(exc.title)), 2
    if isinstance(exc, UserError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.strerror or exc}: {exc.filename}", 1
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first} (`escucha --debug …` shows the traceback)", 1


def _env_prefix(settings_class: str) -> str:
    """The environment prefix of the settings class a validation error names (``ESCUCHA_`` or a network's)."""
    from networks.registry import NETWORKS

    for spec in NETWORKS.values():
        if spec.settings.__name__ == settings_class:
            return str(spec.settings.model_config.get("env_prefix", "ESCUCHA_"))
    return "ESCUCHA_"


def _fail(message: str, code: int) -> None:
    # One line on standard error, whatever the message held (a driver's multi-line text, a secret by mistake).
    typer.echo(f"error: {' '.join(redact(message).split())}", err=True)
    sys.exit(code)


class EscuchaGroup(TyperGroup):
    """The ``escucha`` command: a person's mistake ends in one line and a non-zero exit; ``--debug`` shows more."""

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run a command; an error ends in one line (usage, settings, database, files), its traceback with --debug."""
        call = dict(args=args, prog_name=prog_name, complete_var=complete_var, windows_expand_args=windows_expand_args)
        if not standalone_mode:
            return super().main(**call, standalone_mode=False, **extra)
        _Run.debug = False
        try:
            code = super().main(**call, standalone_mode=False, **extra)
        except typer.TyperException as exc:  # click's usage errors and bad parameters (typer carries its own click)
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None and exc.exit_code == 2 else ""
            _fail(exc.format_message() + hint, exc.exit_code)
        except typer.Abort:
            _fail("aborted", 1)
        except Exception as exc:
            if _Run.debug:
                raise
            _fail(*_describe(exc))
        sys.exit(code if isinstance(code, int) else 0)


# No pretty tracebacks: with --debug the plain one, without local variables (they may hold settings).
app = typer.Typer(
    cls=EscuchaGroup,
    help="Escucha: the social-media listening and response desk.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    log_level: Annotated[str, typer.Option(help=f"Logging level: {', '.join(LOG_LEVELS)}.")] = "INFO",
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback when a command fails.")] = False,
) -> None:
    """Set up logging for every command."""
    _Run.debug = debug
    if log_level.upper() not in LOG_LEVELS:
        raise typer.BadParameter(f"{log_level!r} is not one of {', '.join(LOG_LEVELS)}", param_hint="--log-level")
    setup_logging(log_level)


def _database(*, read_only: bool) -> Engine:
    """The configured database, reachable; a reader's must already carry this version's schema, a writer's is migrated.

    Readers never create or migrate anything: pointed at the wrong database, they must not leave tables behind.
    """
    get_settings()  # a refused setting is reported before any connection is tried
    engine = get_engine()
    if read_only:
        require_schema(engine)
    else:
        check_reachable(engine)
        migrate(engine)
    return engine


@app.command("init-db")
def init_db() -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    _database(read_only=False)
    typer.echo("database is at the latest schema")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Show what was ingested, scored, assigned and answered, and each source's health."""
    from responder.status import collect_status

    engine = _database(read_only=True)
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
    from classifier.registry import load_scorer, use_model_threads
    from responder.notify import notify_options
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
    for spec in NETWORKS.values():
        spec.settings_of(settings)  # each network's settings checked before the database is touched
    engine = _database(read_only=False)
    listeners = build_listeners(settings)
    if not listeners and "listeners" in parts:
        log.warning("no network credentials configured: nothing to poll (see README, 'Configuration')")
    use_model_threads(settings.model_threads)
    # Only a process that scores loads the transformer (over 1 GB); the others never call the scorer.
    scorer = load_scorer() if "classifier" in parts else LexiconScorer()
    if "classifier" in parts:
        from classifier.heads import versioned
        from classifier.refit_job import RefitOptions

        scorer = versioned(scorer, engine)  # refitted heads promoted by any worker are applied here too
    budgets = {name: ReadBudget.of(spec.settings_of(settings)) for name, spec in NETWORKS.items()}
    w = Worker(
        engine, listeners=listeners, senders=build_senders(settings), scorer=scorer,
        batch_size=settings.batch_size, budgets=budgets,
        verify_retries=settings.fetch_retries, care_options=care_options(settings),
        sending_lease=timedelta(seconds=settings.sending_lease_seconds), notify=notify_options(settings),
        refit=RefitOptions(min_corrections=settings.refit_min_corrections) if "classifier" in parts else None,
        sla_seconds=settings.sla_seconds, upkeep_seconds=settings.upkeep_seconds,
    )  # fmt: skip
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    w.start(
        intervals=poll_intervals(settings, listeners),
        stage_seconds=stage_intervals(settings),
        persistent=settings.persistent_jobs,
        role=role,
        wake=settings.wake_stages,
        safety_seconds=settings.wake_safety_seconds,
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
    engine = _database(read_only=False)
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

    _database(read_only=True)  # the app only reads and acts on an existing desk: say so here, not in a browser
    # SIGTERM or Ctrl-C stops the Streamlit server too: an orphan kept serving and holding database connections.
    raise typer.Exit(serve(streamlit_command(port=port)))


@app.command()
def webhooks(
    port: Annotated[
        int | None, typer.Option(help="Port of the receiver (default ESCUCHA_WEBHOOKS_PORT, 8600).")
    ] = None,
) -> None:
    """Receive X and Facebook webhooks into the store (put it behind a TLS reverse proxy; see the README)."""
    from webhooks.server import serve

    settings = get_settings()
    engine = _database(read_only=True)  # the schema must exist: deliveries are stored, not migrations run
    log.info("webhook receiver on %s:%s", settings.webhooks_address, port or settings.webhooks_port)
    serve(settings, engine, port=port)


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

# The relevance and crisis lanes' evaluations live in their own module.
from escucha.lanes_cli import register as register_lanes  # noqa: E402

register_lanes(app)

# Heads refitted on staff corrections (`escucha heads status|refit|rollback|cache-features`).
from escucha.heads_cli import register as register_heads  # noqa: E402

register_heads(app, _database)

# The knowledge base's commands (kb import, evaluate-answers) live in their own module.
from escucha.knowledge_cli import register as register_knowledge  # noqa: E402

register_knowledge(app, _database)

# Every `escucha bench …` command lives with the benches.
from benches.commands import register as register_benches  # noqa: E402

register_benches(bench_app)


if __name__ == "__main__":
    app()
