"""The review desk's web server: Streamlit's own app plus the two endpoints that set and clear the session cookie.

``streamlit run review_app/server.py`` finds ``app`` and serves it. A Streamlit page talks over a websocket and
cannot set cookies; these endpoints are plain same-origin HTTP, so the cookie can be HttpOnly (no script reads
it) and SameSite=Strict (no other site's page sends it). The page POSTs a one-time handoff code in the body:
no secret ever travels in a URL.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ground.db import get_engine
from ground.settings import get_settings
from models import sessions
from review_app.context import HANDOFF_PATH, SIGNOUT_PATH, signing_key

log = logging.getLogger("review_app")

SCRIPT = Path(__file__).resolve().parent / "app.py"
MAX_BODY = 256


def _secure(request: Request) -> bool:
    # Behind a TLS proxy the app itself sees plain http; only a trusted proxy's word says otherwise.
    forwarded = request.headers.get("x-forwarded-proto", "") if get_settings().review_trust_forwarded else ""
    return request.url.scheme == "https" or forwarded.lower() == "https"


def _exchange(code: str) -> str | None:
    with Session(get_engine()) as session:
        return sessions.exchange(session, handoff=code, key=signing_key(session))


def _end(cookie: str | None) -> None:
    with Session(get_engine()) as session:
        sessions.end_by_cookie(session, cookie=cookie, key=signing_key(session))


async def handoff(request: Request) -> Response:
    """Trade the one-time code in the body for the HttpOnly session cookie (403 when the code is not good)."""
    body = (await request.body())[:MAX_BODY].decode("ascii", errors="replace").strip()
    try:
        value = await run_in_threadpool(_exchange, body)
    except Exception:
        log.exception("a desk session handoff failed")
        return Response(status_code=500)
    if value is None:
        return Response(status_code=403)
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.set_cookie(
        sessions.COOKIE_NAME,
        value,
        max_age=max(1, int(get_settings().session_max_hours * 3600)),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )
    return response


async def signout(request: Request) -> Response:
    """End the session the cookie names and clear the cookie (the page has already ended it too)."""
    try:
        await run_in_threadpool(_end, request.cookies.get(sessions.COOKIE_NAME))
    except Exception:
        log.exception("a desk sign-out could not end its session")
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    response.delete_cookie(sessions.COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response


app = st.App(
    SCRIPT,
    routes=[Route(HANDOFF_PATH, handoff, methods=["POST"]), Route(SIGNOUT_PATH, signout, methods=["POST"])],
)
