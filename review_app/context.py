"""What every page needs: the engine, the senders, the interface language and who is acting."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ground.db import get_engine
from ground.settings import get_settings
from models.tables import Staff
from networks.registry import build_senders
from responder.permissions import Action, can
from review_app.i18n import DEFAULT_LANGUAGE, LANGUAGES, t

if TYPE_CHECKING:
    from networks.base import Sender

log = logging.getLogger(__name__)

LANG_KEY = "lang"
STAFF_KEY = "staff_id"
FLASH_KEY = "flash"


def engine() -> Engine:
    """Return the process-wide engine for ``ESCUCHA_DATABASE_URL``."""
    return get_engine()


@st.cache_resource(show_spinner=False)
def senders() -> Mapping[str, Sender]:
    """Return the network senders, or an empty mapping when none can be built here.

    Without senders an approval is still recorded; the worker's outbox job sends it on its next pass.
    """
    try:
        built = build_senders(get_settings())
    except Exception:
        # A missing credential must not take the desk down; approvals still reach the worker's outbox.
        log.exception("could not build senders; the worker will send approved replies")
        return {}
    return dict(built or {})


def lang() -> str:
    """Return the interface language chosen in the sidebar."""
    value = st.session_state.get(LANG_KEY, DEFAULT_LANGUAGE)
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def acting_staff(session: Session) -> Staff | None:
    """Return the signed-in staff member, read fresh from the database so a changed role counts at once."""
    staff_id = st.session_state.get(STAFF_KEY)
    return session.get(Staff, staff_id) if isinstance(staff_id, int) else None


def sign_in_as(staff: Staff) -> None:
    """Remember who signed in in this browser session (server-side state) and use their language."""
    st.session_state[STAFF_KEY] = staff.id
    if staff.ui_language in LANGUAGES:
        st.session_state[LANG_KEY] = staff.ui_language


def sign_out() -> None:
    """Forget who is signed in, and everything they had typed."""
    lang_now = lang()
    st.session_state.clear()
    st.session_state[LANG_KEY] = lang_now


def pick_client(peer: str | None, forwarded_for: str | None, *, trust_forwarded: bool) -> str | None:
    """Return the client's address: the peer's, or behind a trusted proxy the last hop it added to X-Forwarded-For.

    The rightmost entry is the one our proxy wrote; the ones left of it came from the client and can be forged.
    """
    if trust_forwarded and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            return hops[-1][:64]
    return peer


def client_address() -> str | None:
    """Return the signed-out visitor's address for the sign-in throttle (``None`` on a loopback connection)."""
    try:
        peer = st.context.ip_address
        forwarded = st.context.headers.get("X-Forwarded-For")
    except Exception:  # no browser connection (a script run on its own): no address to tell
        return None
    # Only text counts: a test harness's stand-in connection has no real address.
    return pick_client(
        peer if isinstance(peer, str) else None,
        forwarded if isinstance(forwarded, str) else None,
        trust_forwarded=get_settings().review_trust_forwarded,
    )


def flash(level: str, message: str) -> None:
    """Queue a message (level: success, info, warning, error) for the top of the next render."""
    st.session_state.setdefault(FLASH_KEY, []).append((level, message))


def show_flashes() -> None:
    """Show and forget the queued messages; they are already markdown-escaped by their authors."""
    for level, message in st.session_state.pop(FLASH_KEY, []):
        getattr(st, level if level in ("success", "info", "warning", "error") else "info")(message)


def allowed_staff(session: Session, lang: str, *, action: Action, refused: str) -> Staff | None:
    """The signed-in person if they may open this page; otherwise say why (no staff, or not for their role)."""
    me = acting_staff(session)
    if me is None:
        st.warning(t(lang, "no_staff"))
        return None
    if not can(me, action):
        st.info(t(lang, refused))
        return None
    return me
