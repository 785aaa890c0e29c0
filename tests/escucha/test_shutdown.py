"""`escucha review` and `escucha demo` stop every child process on SIGTERM and SIGINT: no orphaned server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.paths import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for(check: object, deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def serving(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_and_check(args: list[str], tmp_path: Path, sig: signal.Signals, start_s: float) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "ESCUCHA_DATABASE_URL": f"sqlite:///{tmp_path / 'desk.db'}",
    }
    # The review app only reads an existing desk (it asks for init-db otherwise): make one, as a person would.
    subprocess.run([sys.executable, "-m", "escucha.cli", "init-db"], env=env, cwd=tmp_path, check=True, timeout=120)
    parent = subprocess.Popen(
        [sys.executable, "-m", "escucha.cli", *args, "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    spawned: set[int] = set()
    try:
        wait_for(lambda: serving(port) or parent.poll() is not None, start_s, "the review app to listen")
        assert parent.poll() is None, parent.stderr.read().decode()[-3000:] if parent.stderr else ""
        spawned = children(parent.pid)
        assert spawned, "the review app runs as a child process"
        parent.send_signal(sig)
        parent.wait(timeout=60)
        wait_for(lambda: not any(alive(p) for p in spawned), 30, "every child to exit")
        assert not serving(port), "something still serves the review app"
    finally:
        for pid in spawned:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_review_stops_its_streamlit_server(tmp_path: Path, sig: signal.Signals) -> None:
    stop_and_check(["review"], tmp_path, sig, start_s=60)


@pytest.mark.slow
def test_demo_stops_its_streamlit_server_on_sigterm(tmp_path: Path) -> None:
    stop_and_check(["demo"], tmp_path, signal.SIGTERM, start_s=180)
