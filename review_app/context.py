"""What every page needs: the engine, the senders, the interface language and who is acting."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from ground.db import get_engine
from ground.settings import get_settings
from models import sessions
from models.tables import Staff
from networks.registry import build_senders
from responder.permissions import Action, NotAllowed, can
from review_app.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from review_app.safe import md

if TYPE_CHECKING:
    from networks.base import Sender

log = logging.getLogger(__name__)

# The endpoints of review_app.server that set and clear the HttpOnly session cookie.
HANDOFF_PATH = "/desk/session"
SIGNOUT_PATH = "/desk/signout"
LANG_KEY = "lang"
STAFF_KEY = "staff_id"
FLASH_KEY = "flash"
# The desk session this browser tab is signed in with (models.sessions), the one-time code its page still has to
# hand to the cookie endpoint, and whether the page still has to ask that endpoint to clear the cookie.
SESSION_KEY = "desk_session_id"
HANDOFF_KEY = "desk_handoff"
CLEAR_COOKIE_KEY = "desk_clear_cookie"


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


def session_limits() -> sessions.Limits:
    """The idle and maximum ages of desk sessions, from the settings."""
    settings = get_settings()
    return sessions.Limits(
        idle=timedelta(minutes=settings.session_idle_minutes), max_age=timedelta(hours=settings.session_max_hours)
    )


def signing_key(session: Session) -> bytes:
    """The key that signs session cookies (``ESCUCHA_SESSION_SECRET``, else the database's own)."""
    secret = get_settings().session_secret
    return sessions.signing_key(session, secret.get_secret_value() if secret else None)


def _cookie() -> str | None:
    try:
        value = st.context.cookies.get(sessions.COOKIE_NAME)
    except Exception:  # no browser connection (a script run on its own): no cookie to read
        return None
    return value if isinstance(value, str) else None


def _forget() -> None:
    """Drop who was signed in from this tab's state (their session ended elsewhere), keeping the language."""
    lang_now = lang()
    st.session_state.clear()
    st.session_state[LANG_KEY] = lang_now
    st.session_state[CLEAR_COOKIE_KEY] = True


def acting_staff(session: Session) -> Staff | None:
    """Return the signed-in staff member, read fresh from the database so a changed role counts at once.

    Each run asks the session record again, so a sign-out elsewhere, a disabled person or an idle session
    ends here too. A new tab, a reload or a link has no state yet: the HttpOnly cookie signs it in again.
    """
    session_id = st.session_state.get(SESSION_KEY)
    if isinstance(session_id, int):
        staff = sessions.check(session, session_id=session_id, limits=session_limits())
        if staff is None:
            _forget()
        return staff
    staff_id = st.session_state.get(STAFF_KEY)
    if isinstance(staff_id, int):
        # Set by the server-side harness of the page tests (no browser, so no cookie): state no browser can write.
        member = session.get(Staff, staff_id)
        return None if member is None or member.disabled else member
    cookie = _cookie()
    if not cookie:
        return None
    found = sessions.resume(session, cookie=cookie, key=signing_key(session), limits=session_limits())
    if found is None:
        return None
    st.session_state[SESSION_KEY], st.session_state[STAFF_KEY] = found[0], found[1].id
    # Their own language, as at sign-in: this runs before the language toggle is drawn (``restore``).
    if found[1].ui_language in LANGUAGES:
        st.session_state[LANG_KEY] = found[1].ui_language
    return found[1]


def restore() -> None:
    """Check this tab's session (or sign it in from its cookie) before any widget is drawn: it may set the language."""
    with Session(engine(), expire_on_commit=False) as session:
        acting_staff(session)


def sign_in_as(staff: Staff) -> None:
    """Start a desk session for ``staff`` (just authenticated) and use their language.

    The page hands the session's one-time code to the cookie endpoint on its next run (``cookie_scripts``).
    """
    with Session(engine(), expire_on_commit=False) as session:
        started = sessions.start(session, staff=staff, limits=session_limits())
    st.session_state[SESSION_KEY] = started.session_id
    st.session_state[STAFF_KEY] = staff.id
    st.session_state[HANDOFF_KEY] = started.handoff
    if staff.ui_language in LANGUAGES:
        st.session_state[LANG_KEY] = staff.ui_language


def sign_out() -> None:
    """End this desk session for good, forget who is signed in and everything they had typed."""
    session_id = st.session_state.get(SESSION_KEY)
    if isinstance(session_id, int):
        with Session(engine()) as session:
            sessions.end(session, session_id=session_id)
    _forget()


def cookie_scripts() -> None:
    """Hand a pending one-time code to the cookie endpoint, or ask it to clear a dead cookie (same-origin POSTs)."""
    handoff = st.session_state.get(HANDOFF_KEY)
    session_id = st.session_state.get(SESSION_KEY)
    if isinstance(handoff, str) and isinstance(session_id, int):
        with Session(engine()) as session:
            waiting = sessions.handoff_pending(session, session_id=session_id)
        # Drawn on every run until the endpoint took the code: a run cut short (a page switch) may never have
        # reached the browser.
        if not waiting:
            st.session_state.pop(HANDOFF_KEY, None)
            handoff = None
    if isinstance(handoff, str) and handoff.replace("-", "").replace("_", "").isalnum():
        body = f"fetch('{HANDOFF_PATH}', {{method: 'POST', body: '{handoff}', credentials: 'same-origin'}});"
        st.html(f"<script>{body}</script>", unsafe_allow_javascript=True)
    if st.session_state.pop(CLEAR_COOKIE_KEY, False):
        body = f"fetch('{SIGNOUT_PATH}', {{method: 'POST', credentials: 'same-origin'}});"
        st.html(f"<script>{body}</script>", unsafe_allow_javascript=True)


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


def flash(level: str, message: str, *, where: str | None = None) -> None:
    """Queue a message (level: success, info, warning, error) for the next render.

    ``where`` names the card or conversation acted on: the message shows beside it, or at the top of the page
    when that one is gone (answered, closed).
    """
    # A message for the top of the page stays a (level, message) pair, as callers have always read it.
    st.session_state.setdefault(FLASH_KEY, []).append((level, message) if where is None else (level, message, where))


def show_flashes(*, where: str | None = None) -> None:
    """Show and forget the queued messages for ``where`` (None: all that are left); already markdown-escaped."""
    kept = []
    for level, message, *rest in st.session_state.pop(FLASH_KEY, []):
        at = rest[0] if rest else None
        if where is not None and at != where:
            kept.append((level, message) if at is None else (level, message, at))
            continue
        getattr(st, level if level in ("success", "info", "warning", "error") else "info")(message)
    if kept:
        st.session_state[FLASH_KEY] = kept


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


def save_as_me(work: Callable[[Session, Staff], object]) -> None:
    """Run one change (admin, knowledge base) as the signed-in person and say how it went."""
    with Session(engine(), expire_on_commit=False) as session:
        me = acting_staff(session)
        if me is None:
            return
        try:
            work(session, me)
        except NotAllowed as exc:
            flash("error", t(lang(), "msg_not_allowed", detail=md(str(exc))))
        except (ValueError, LookupError) as exc:
            flash("error", t(lang(), "msg_error", detail=md(str(exc))))
        else:
            flash("success", t(lang(), "msg_saved"))
