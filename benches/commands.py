"""Every ``escucha bench`` command (each bench's module loads lazily, when its command runs)."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import typer

DEFAULT_DB_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"

log = logging.getLogger("escucha")


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
        return
    for key, value in report.items():
        typer.echo(f"{key}: {json.dumps(value) if isinstance(value, dict | list) else value}")


def register(bench_app: typer.Typer) -> None:
    """Add every bench to ``escucha bench``."""

    @bench_app.command("ingest")
    def bench_ingest(
        n: Annotated[
            int, typer.Option("--n", help="Mentions to seed and ingest (100000 shows memory stays flat).")
        ] = 20000,
        database_url: Annotated[
            str | None, typer.Option(help="Database to ingest into (default: a temporary SQLite).")
        ] = None,
        page_size: Annotated[int, typer.Option(help="Posts per X page (10..100).")] = 100,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Ingest N mentions from the sandbox through tweepy into the database; report posts/s and memory."""
        from benches.ingest import bench_ingest as run

        report = run(n, database_url=database_url, page_size=page_size)
        _print(report, as_json)

    @bench_app.command("assign")
    def bench_assign(
        posts: Annotated[int, typer.Option("--posts", help="Scored posts in the backlog.")] = 10_000,
        staff: Annotated[int, typer.Option("--staff", help="Staff members sharing it.")] = 50,
        database_url: Annotated[
            str | None,
            typer.Option(help="Database to use (default: a temporary SQLite; PostgreSQL gets a temp schema)."),
        ] = None,
        batch: Annotated[int, typer.Option(help="Posts claimed per sweep.")] = 500,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Assign a backlog of scored posts across a team with the real sweep; report assignments per second."""
        from benches.assign import bench_assign as run

        report = run(posts, staff, database_url=database_url, batch=batch)
        _print(report, as_json)

    @bench_app.command("review")
    def bench_review(
        n: Annotated[int, typer.Option("--n", help="Open posts in the queue.")] = 10_000,
        runs: Annotated[int, typer.Option(help="Timed renders (the median is reported).")] = 5,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Render the queue, approvals and notifications pages with N open posts; report server time per render."""
        from benches.review import bench_review as run

        report = run(n, runs=runs)
        _print(report, as_json)

    @bench_app.command("customer")
    def bench_customer(
        database_url: Annotated[str, typer.Option(help="PostgreSQL server for a throw-away schema.")] = DEFAULT_DB_URL,
        posts: Annotated[int, typer.Option(help="Posts in the database.")] = 100_000,
        customers: Annotated[int, typer.Option(help="Customers (one in ten with two identities).")] = 20_000,
        runs: Annotated[int, typer.Option(help="Timed renders (the median is reported).")] = 5,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Render the customer page of the busiest customer on a large PostgreSQL schema; report the server time."""
        from benches.customer import bench_customer as run

        _print(run(database_url, posts=posts, customers=customers, runs=runs), as_json)

    @bench_app.command("conversation")
    def bench_conversation(
        posts: Annotated[int, typer.Option("--posts", help="Posts in the database.")] = 100_000,
        customers: Annotated[int, typer.Option("--customers", help="Customers (authors) who wrote them.")] = 20_000,
        database_url: Annotated[
            str, typer.Option(help="PostgreSQL to use (a scratch schema, dropped afterwards).")
        ] = DEFAULT_DB_URL,
        runs: Annotated[int, typer.Option(help="Timed renders per page (the median is reported).")] = 5,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Render the queue and a conversation on a large database; report each page's server time (target < 1 s)."""
        from benches.conversation import bench_conversation as run

        report = run(database_url=database_url, posts=posts, customers=customers, runs=runs)
        _print(report, as_json)

    @bench_app.command("pipeline")
    def bench_pipeline(
        rate: Annotated[float, typer.Option(help="New posts per second arriving in the sandbox.")] = 50.0,
        seconds: Annotated[float, typer.Option(help="How long posts keep arriving.")] = 600.0,
        workers: Annotated[int, typer.Option(help="`escucha worker --role all` processes (without --roles).")] = 2,
        roles: Annotated[
            str | None,
            typer.Option(help="One worker process per comma-separated role, e.g. listeners,classifier+responder."),
        ] = None,
        db_url: Annotated[
            str, typer.Option(help="PostgreSQL server for a throw-away schema ('sqlite': a temporary file).")
        ] = DEFAULT_DB_URL,
        scorer: Annotated[str, typer.Option(help="transformer (the product's default) or lexicon.")] = "transformer",
        ingest: Annotated[
            str,
            typer.Option(
                help="poll: the workers poll the sandbox; webhooks: the sandbox also pushes each post to a real "
                "`escucha webhooks` (signed, retried, some twice, some out of order) and polling is the safety net."
            ),
        ] = "poll",
        poll_seconds: Annotated[
            float | None, typer.Option(help="Workers' poll interval per source (default 5; 30 with webhooks).")
        ] = None,
        stage_seconds: Annotated[float, typer.Option(help="Workers' score/assign/send cadence.")] = 2.0,
        wake: Annotated[
            bool, typer.Option(help="Stages woken by PostgreSQL NOTIFY after the commits that create work.")
        ] = True,
        safety_seconds: Annotated[
            float, typer.Option(help="With --wake, the woken stages' tick (the net for a lost notification).")
        ] = 10.0,
        staff: Annotated[int, typer.Option(help="Team size (capacity is set so it never binds).")] = 100,
        answer: Annotated[
            bool, typer.Option(help="Play the team: approve each suggested reply, so the outbox sends it.")
        ] = True,
        answer_after: Annotated[float, typer.Option(help="Seconds from a suggested reply to its approval.")] = 10.0,
        knowledge: Annotated[
            bool | None,
            typer.Option(
                help="Put the demo's support manuals in the knowledge base, as a configured desk (default: with the "
                "transformer scorer)."
            ),
        ] = None,
        unique_texts: Annotated[
            bool, typer.Option(help="No two posts alike (repeats of the seed texts are marked '#2', '#3'…).")
        ] = True,
        sample_every: Annotated[
            float | None, typer.Option(help="Seconds between backlog/memory samples (default 5, less in short runs).")
        ] = None,
        drain_seconds: Annotated[
            float | None, typer.Option(help="After the load, wait this long at most for the backlog to empty.")
        ] = None,
        model_threads: Annotated[
            int | None,
            typer.Option(min=1, help="Model threads per worker (default: the cores shared among the workers)."),
        ] = None,
        progress: Annotated[bool, typer.Option(help="Progress bar on standard error.")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Posts arrive at RATE/s for SECONDS and flow through real worker processes.

        Reports throughput, the backlog's trend, latency to assignment, memory, and whether every post was
        accounted for.
        """
        from benches.pipeline import INGEST_MODES, WEBHOOK_POLL_SECONDS, PipelineOptions, run_with_progress

        if scorer not in ("lexicon", "transformer"):
            raise typer.BadParameter("expected lexicon or transformer", param_hint="--scorer")
        if ingest not in INGEST_MODES:
            raise typer.BadParameter(f"expected one of {', '.join(INGEST_MODES)}", param_hint="--ingest")
        if poll_seconds is None:
            poll_seconds = WEBHOOK_POLL_SECONDS if ingest == "webhooks" else 5.0
        options = PipelineOptions(
            rate=rate, seconds=seconds, workers=workers,
            roles=tuple(r.strip() for r in roles.split(",") if r.strip()) if roles else None,
            db_url=db_url, scorer=scorer, poll_seconds=poll_seconds, stage_seconds=stage_seconds, staff=staff,
            ingest=ingest, wake=wake, safety_seconds=safety_seconds,
            answer=answer, answer_after=answer_after, sample_every=sample_every, drain_seconds=drain_seconds,
            knowledge=scorer == "transformer" if knowledge is None else knowledge, unique_texts=unique_texts,
            model_threads=model_threads,
        )  # fmt: skip
        try:
            options.process_roles()
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--roles") from exc
        try:
            report = run_with_progress(options, show=progress)
        except KeyboardInterrupt:
            log.warning("bench stopped: workers, sandbox and scratch schema cleaned up")
            raise typer.Exit(130) from None
        _print(report, as_json)

    @bench_app.command("send")
    def bench_send(
        n: Annotated[int, typer.Option("--n", help="Approved replies to send.")] = 2000,
        database_url: Annotated[
            str | None, typer.Option(help="Database (default: a temporary SQLite; PostgreSQL gets a temp schema).")
        ] = None,
        limit: Annotated[int, typer.Option(help="Replies per outbox tick (the worker's send_approved limit).")] = 50,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Send N approved replies through one process's outbox to the sandbox.

        X replies and DMs and Facebook comments go through the real senders; reports sends per second and that
        each went out exactly once.
        """
        from benches.send import bench_send as run

        _print(run(n, database_url=database_url, limit=limit), as_json)

    @bench_app.command("explain")
    def bench_explain(
        database_url: Annotated[str, typer.Option(help="PostgreSQL server for a throw-away schema.")] = DEFAULT_DB_URL,
        posts: Annotated[int, typer.Option(help="Posts in the table (most answered, a few hundred open).")] = 100_000,
        index: Annotated[
            list[str] | None, typer.Option(help="Extra CREATE INDEX statement to try first (repeatable).")
        ] = None,
        plans: Annotated[bool, typer.Option(help="Include each statement's text plan.")] = False,
        satisfaction: Annotated[bool, typer.Option(help="Also run the (slow here) satisfaction sweep.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Run each worker stage once on a large migrated table and EXPLAIN every statement it sent.

        Says which index each query used, which tables it read in full and how long it took.
        """
        from benches.explain import bench_explain as run

        report = run(database_url, posts=posts, indexes=index or (), plans=plans, satisfaction=satisfaction)
        if as_json:
            typer.echo(json.dumps(report, sort_keys=True))
            return
        for row in report["statements"]:
            typer.echo(f"{row['origin']}: {row['ms']} ms, indexes {row['indexes']}, full scans {row['seq_scans']}")

    @bench_app.command("chaos")
    def bench_chaos(
        minutes: Annotated[float, typer.Option(help="How long customers post and faults land.")] = 10.0,
        kills: Annotated[int, typer.Option(help="Workers SIGKILLed (and replaced) at random over the run.")] = 20,
        seed: Annotated[int, typer.Option(help="Seeds traffic, faults, approvals and kills.")] = 20261206,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Traffic on every channel through real workers on a private PostgreSQL, with kills, a restart and faults."""
        from benches.chaos import bench_chaos as run

        report = run(minutes=minutes, kills=kills, seed=seed)
        _print(report, as_json)
        lost = report["posts_lost"] + report["posts_duplicated"] + report["replies_sent_twice"] + report["replies_lost"]
        if lost:
            raise typer.Exit(1)

    @bench_app.command("classifier")
    def bench_classifier(
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        n: Annotated[int, typer.Option(help="Real tweets to score per batch size.")] = 1024,
        pipeline_n: Annotated[int, typer.Option(help="Tweets for the plain-pipeline comparison.")] = 128,
        model: Annotated[str | None, typer.Option(help="Model directory (default: $ESCUCHA_MODEL or shipped).")] = None,
    ) -> None:
        """Tweets/s at the best batch size, batch latency, peak memory, and the ratio to a plain pipeline."""
        from benches.classifier import bench_classifier as run

        _print(run(n=n, pipeline_n=pipeline_n, model=model), as_json)
