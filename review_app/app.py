"""The review desk's entry point: `streamlit run review_app/app.py`.

Who is signed in decides which pages exist; each page and every action it calls check the permission again.
The pages live in ``review_app/views``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st
from sqlalchemy import func, select
from sqlmodel import Session

from models.tables import Staff
from responder.admin import set_ui_language
from responder.permissions import Action, can
from review_app import context
from review_app.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from review_app.labels import code
from review_app.safe import md

# Not "pages/": Streamlit would list that folder as a second, automatic navigation before ours loads.
PAGES_DIR = Path(__file__).resolve().parent / "views"
# A file served by the app itself: a ":material/…:" page icon makes the browser fetch it from fonts.gstatic.com.
ICON = Path(__file__).resolve().parent / "static" / "escucha-icon.png"

log = logging.getLogger("review_app")


def _save_language() -> None:
    """Remember the chosen language for the signed-in person (a callback of the toggle)."""
    chosen = st.session_state.get(context.LANG_KEY)
    with Session(context.engine()) as session:
        me = context.acting_staff(session)
        if me is not None and isinstance(chosen, str):
            set_ui_language(session, staff=me, language=chosen)


def _language_picker() -> str:
    """Show the Español/English toggle; a link may open in a language with ``?lang=en`` or ``?lang=es``."""
    if context.LANG_KEY not in st.session_state:
        wanted = st.query_params.get("lang", DEFAULT_LANGUAGE)
        st.session_state[context.LANG_KEY] = wanted if wanted in LANGUAGES else DEFAULT_LANGUAGE
    chosen = st.sidebar.segmented_control(
        # Both languages in the label: whoever cannot read the current one can still find the switch.
        "Idioma · Language",
        options=list(LANGUAGES),
        required=True,
        format_func=lambda code: LANGUAGES[code],
        key=context.LANG_KEY,
        on_change=_save_language,
    )
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def _pages(lang: str, me: Staff) -> list[st.Page]:
    """Return the pages ``me``'s role may open; the first is the default."""
    pages: list[tuple[Action | None, str, str, str]] = [
        (Action.VIEW_QUEUE, "queue.py", "page_queue", ":material/inbox:"),
        (Action.VIEW_INBOX, "inbox.py", "page_inbox", ":material/person:"),
        (Action.VIEW_TRENDS, "trends.py", "page_trends", ":material/trending_up:"),
        (None, "overview.py", "page_overview", ":material/monitoring:"),
        (Action.ADMIN, "admin.py", "page_admin", ":material/settings:"),
    ]
    allowed = [p for p in pages if p[0] is None or can(me, p[0])]
    return [
        st.Page(PAGES_DIR / file, title=t(lang, title), icon=icon, url_path=file[:-3], default=i == 0)
        for i, (_, file, title, icon) in enumerate(allowed)
    ]


def main() -> None:
    """Run the desk; anything that goes wrong is logged in full and shown to the visitor as one short line."""
    st.set_page_config(page_title="Escucha", page_icon=str(ICON), layout="wide")
    lang = _language_picker()
    try:
        _desk(lang)
    except Exception:
        # Streamlit's own rerun and stop signals are BaseExceptions and pass through. The rest (a database that
        # is down, a bug) may name hosts, ports and files: for the log, not for whoever opened the page.
        log.exception("the review app failed to render")
        st.error(t(lang, "app_error"))


def _desk(lang: str) -> None:
    """Lay out the sidebar and run the chosen page (the sign-in page until someone signs in)."""
    with Session(context.engine(), expire_on_commit=False) as session:
        has_staff = bool(session.execute(select(func.count()).select_from(Staff)).scalar_one())
        me = context.acting_staff(session)
    if not has_staff:
        st.title(t(lang, "app_title"))
        st.warning(t(lang, "no_staff"))
        return
    if me is None:
        st.navigation([st.Page(PAGES_DIR / "signin.py", title=t(lang, "page_signin"), url_path="signin")]).run()
        return
    st.sidebar.markdown(f"**{md(me.name)}** · {code(lang, 'role', me.role)}")
    st.sidebar.button(t(lang, "signout"), key="signout", on_click=context.sign_out, icon=":material/logout:")
    st.navigation(_pages(lang, me)).run()


main()
