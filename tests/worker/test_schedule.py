"""The worker's schedule: a persistent job per source, rate limits and the read budget, bad tokens, status."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from classifier.registry import load_scorer
from ground.settings import Settings
from listeners.budget import ReadBudget, Spend
from models.store import get_cursor
from models.tables import utcnow
from networks.registry import build_listeners, build_senders, network_settings, poll_intervals
from networks.x.settings import XSettings
from responder.status import collect_status
from sandbox.server import Sandbox
from worker.scheduler import Worker, job_id, run_poll


def settings_for(sb: Sandbox, **overrides: Any) -> Settings:
    return Settings(_env_file=None, **{**sb.settings_overrides(), **overrides})  # type: ignore[call-arg]


def worker_for(engine: Engine, settings: Settings, **kwargs: Any) -> Worker:
    return Worker(engine, listeners=build_listeners(settings), senders=build_senders(settings), scorer=load_scorer(),
                  **kwargs)  # fmt: skip


def wait_until_polled(engine: Engine, sources: list[tuple[str, str]]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with Session(engine) as session:
            if all(get_cursor(session, network=n, source=s).last_success_at for n, s in sources):
                return
        time.sleep(0.05)
    pytest.fail(f"{sources} were not all polled")


def test_sources_switch_on_and_off_and_have_their_own_intervals(sandbox: Sandbox) -> None:
    settings = settings_for(sandbox, x_dms_enabled=False, facebook_messages_enabled=False, x_search_poll_seconds=300)
    sources = {(x.network, x.source) for x in build_listeners(settings)}
    assert sources == {("x", "mentions"), ("x", "search"), ("facebook", "feed")}
    intervals = poll_intervals(settings, build_listeners(settings))
    assert intervals["x:search"] == 300 and intervals["x:mentions"] == intervals["facebook:feed"] == 60
    assert not network_settings(settings_for(sandbox, x_enabled=False), "x").source_enabled("mentions")


def test_jobs_persist_across_restarts_with_their_pauses(engine: Engine, sandbox: Sandbox) -> None:
    settings = settings_for(sandbox, facebook_enabled=False)
    intervals = {"x": 3600.0, "x:dms": 1800.0}
    first = worker_for(engine, settings)
    scheduler = first.start(intervals=intervals, stage_seconds=3600, persistent=True)
    try:
        jobs = {j.id: j for j in scheduler.get_jobs(jobstore="default")}
        assert set(jobs) == {"poll:x:mentions", "poll:x:dms", "poll:x:search"}
        assert jobs["poll:x:dms"].trigger.interval == timedelta(seconds=1800)
        assert jobs["poll:x:mentions"].func is run_poll and jobs["poll:x:mentions"].args == ("x", "mentions")
        # A 429 moves the source's next run to the reset time, in the database.
        sandbox.fail_next(status=429, path_contains="/mentions", retry_after=900)
        mentions = first.listener("x", "mentions")
        assert mentions is not None
        assert first.poll(mentions).status == "rate_limited"
        paused = scheduler.get_job("poll:x:mentions").next_run_time
        assert paused > utcnow() + timedelta(seconds=800)
    finally:
        first.stop()
    # A restart with DMs switched off keeps the stored pause and drops the job of the missing source.
    second = worker_for(engine, settings_for(sandbox, facebook_enabled=False, x_dms_enabled=False))
    scheduler = second.start(intervals=intervals, stage_seconds=3600, persistent=True)
    try:
        jobs = {j.id: j for j in scheduler.get_jobs(jobstore="default")}
        assert set(jobs) == {"poll:x:mentions", "poll:x:search"}
        assert abs((jobs["poll:x:mentions"].next_run_time - paused).total_seconds()) < 1
    finally:
        second.stop()
    with Session(engine) as session:
        cursor = get_cursor(session, network="x", source="mentions")
        assert cursor.next_run_at is not None and "rate limited" in (cursor.last_error or "")


def test_a_bad_token_stops_that_source_alone(
    engine: Engine, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(sandbox, facebook_page_token="expired-token")
    worker = worker_for(engine, settings)
    with caplog.at_level(logging.ERROR):
        scheduler = worker.start(intervals={"x": 3600, "facebook": 3600}, stage_seconds=3600)
    try:
        ids = {j.id for j in scheduler.get_jobs(jobstore="default")}
        assert ids == {"poll:x:mentions", "poll:x:dms", "poll:x:search"}
        assert "poll:facebook:feed not scheduled: credentials refused" in caplog.text
        # A token refused while running: that job goes, the others stay. (The first runs finish first.)
        wait_until_polled(engine, [("x", "mentions"), ("x", "dms"), ("x", "search")])
        scheduler.pause()
        mentions = worker.listener("x", "mentions")
        assert mentions is not None
        sandbox.fail_next(status=401, path_contains="/mentions")
        assert worker.poll(mentions).status == "auth_failed"
        assert {j.id for j in scheduler.get_jobs(jobstore="default")} == {"poll:x:dms", "poll:x:search"}
    finally:
        worker.stop()
    with Session(engine) as session:
        status = {(s["network"], s["source"]): s for s in collect_status(session)["sources"]}
    assert status[("facebook", "feed")]["throttled"] == "stopped: credentials refused"
    assert status[("x", "mentions")]["throttled"] == "stopped: credentials refused"
    assert "credentials refused" in status[("x", "mentions")]["last_error"]


def test_budget_paces_reads_over_the_month() -> None:
    budget = ReadBudget(posts=10_000, cost_per_post_usd=0.005)
    mid_month = datetime(2026, 4, 16, tzinfo=UTC)  # half of April gone
    assert budget.pace(budget.spend(posts_read=4000, requests=40), mid_month).not_before is None
    ahead = budget.pace(budget.spend(posts_read=7500, requests=75), mid_month)
    assert ahead.not_before == datetime(2026, 4, 23, 12, tzinfo=UTC) and "slowed" in (ahead.note or "")
    spent = budget.pace(Spend(10_000, 100, 50.0), mid_month)
    assert spent.not_before == datetime(2026, 5, 1, tzinfo=UTC) and "paused" in (spent.note or "")
    assert budget.spend(posts_read=200, requests=2).cost_usd == 1.0
    assert not ReadBudget().limited


def test_worker_slows_down_when_the_budget_runs_ahead_and_says_so(
    engine: Engine, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(30):
        sandbox.add_mention(f"m{i}")
    settings = settings_for(sandbox, facebook_enabled=False, x_monthly_post_budget=20, x_page_size=10)
    worker = worker_for(engine, settings, budgets={"x": ReadBudget.of(XSettings.of(settings))})
    scheduler = worker.start(intervals={"x": 3600}, stage_seconds=3600, persistent=True, paused=True)
    try:
        mentions = worker.listener("x", "mentions")
        assert mentions is not None
        with caplog.at_level(logging.WARNING, logger="worker.scheduler"):
            assert worker.poll(mentions).status == "ok"
            worker.poll(mentions)
        assert caplog.text.count("monthly read budget spent") == 1  # said once, on the change
        next_run = scheduler.get_job(job_id(mentions)).next_run_time
        assert next_run >= utcnow().replace(day=28) or next_run.day == 1
        with Session(engine) as session:
            report = collect_status(session, settings)
    finally:
        worker.stop()
    x = report["read_budget"]["x"]
    assert x["posts_read"] == 30 and x["requests"] == 4 and x["estimated_cost_usd"] == 0.15
    assert x["used"] == 1.5 and "paused" in x["slowed"]
    source = next(s for s in report["sources"] if s["source"] == "mentions")
    assert "budget" in source["throttled"]
    quota = source["rate_limits"][f"/2/users/{sandbox.brand_user_id}/mentions"]
    assert quota["limit"] == 450 and quota["remaining"] < 450


def test_each_stage_runs_at_its_own_cadence_on_its_own_threads(engine: Engine, sandbox: Sandbox) -> None:
    from worker.scheduler import stage_intervals

    settings = settings_for(sandbox, score_seconds=3, assign_seconds=5, send_seconds=7)
    assert stage_intervals(settings) == {"score": 3, "assign": 5, "care": 5, "send": 7, "notify": 5, "refit": 600}
    worker = worker_for(engine, settings)
    scheduler = worker.start(intervals={"x": 3600, "facebook": 3600}, stage_seconds=stage_intervals(settings),
                             paused=True)  # fmt: skip
    try:
        stages = {j.id: j for j in scheduler.get_jobs(jobstore="stages")}
        assert {k: j.trigger.interval.total_seconds() for k, j in stages.items()} == {
            "score": 3, "assign": 5, "care": 5, "send": 7, "notify": 5, "refit": 600,
        }  # fmt: skip
        # Polls keep the default pool; a wave of slow polls cannot take the threads the sweeps run on.
        assert {j.executor for j in stages.values()} == {"stages"}
        assert {j.executor for j in scheduler.get_jobs(jobstore="default")} == {"default"}
    finally:
        worker.stop()
