"""Sign-in: e-mail and password, checked against the argon2 hash; paused for a while after repeated failures."""

from __future__ import annotations

import logging

import streamlit as st
from sqlmodel import Session

from models.auth import SignIn, authenticate
from review_app import context, fmt
from review_app.i18n import t

log = logging.getLogger(__name__)

EMAIL_KEY = "signin_email"
PASSWORD_KEY = "signin_password"  # noqa: S105 - a widget key, not a password


def _submit() -> None:
    """Check the form (a callback, so the next render already shows the signed-in desk)."""
    lang = context.lang()
    email = str(st.session_state.get(EMAIL_KEY, ""))
    password = str(st.session_state.get(PASSWORD_KEY, ""))
    # The password never stays in session state, whatever the outcome.
    st.session_state[PASSWORD_KEY] = ""
    # Waits after failures are per address and per account, never for everyone (models.auth.Throttle).
    client = context.client_address()
    try:
        with Session(context.engine(), expire_on_commit=False) as session:
            result = authenticate(session, email=email, password=password, client=client)
    except Exception:
        # A callback's error would reach the visitor in Streamlit's own box: log it, say one short line.
        log.exception("sign-in could not be checked")
        context.flash("error", t(lang, "app_error"))
        return
    if result.outcome == SignIn.OK and result.staff is not None:
        context.sign_in_as(result.staff)
        return
    if result.outcome == SignIn.LOCKED and result.locked_until is not None:
        context.flash("error", t(lang, "signin_locked", until=fmt.clock(result.locked_until)))
    else:
        # The same words for an unknown e-mail and a wrong password: no way to probe who has an account.
        context.flash("error", t(lang, "signin_invalid"))


def render() -> None:
    """Render the sign-in form."""
    lang = context.lang()
    st.title(t(lang, "app_title"))
    st.subheader(t(lang, "signin_title"))
    context.show_flashes()
    with st.form("signin", clear_on_submit=False):
        st.text_input(t(lang, "signin_email"), key=EMAIL_KEY, autocomplete="username")
        st.text_input(t(lang, "signin_password"), key=PASSWORD_KEY, type="password", autocomplete="current-password")
        st.form_submit_button(t(lang, "signin_button"), type="primary", on_click=_submit)


if __name__ == "__main__":
    render()
