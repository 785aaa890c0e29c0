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
from streamlit.delta_generator import DeltaGenerator

from models.alerts import unread_count
from models.tables import Staff
from responder.admin import set_ui_language
from responder.permissions import Action, can
from responder.tasks import open_task_count
from review_app import context
from review_app.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from review_app.labels import code
from review_app.safe import md
from review_app.views import not_found, signin

# Not "pages/": Streamlit would list that folder as a second, automatic navigation before ours loads.
PAGES_DIR = Path(__file__).resolve().parent / "views"
# A file served by the app itself: a ":material/…:" page icon makes the browser fetch it from fonts.gstatic.com.
ICON = Path(__file__).resolve().parent / "static" / "escucha-icon.png"

log = logging.getLogger("review_app")
# Every page's address: signed out, each of them shows the sign-in form.
DESK_PATHS = (
    "signin", "queue", "inbox", "approvals", "submissions", "conversation", "customer", "trends", "overview",
    "knowledge", "notifications", "admin", "crisis", "tasks",
)  # fmt: skip


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


def _notifications_title(lang: str, me: Staff) -> str:
    """The notifications page's sidebar title, with the unread count when there is one."""
    with Session(context.engine()) as session:
        unread = unread_count(session, staff_id=me.id) if me.id is not None else 0
    return t(lang, "page_notifications_unread", n=unread) if unread else t(lang, "page_notifications")


def _tasks_title(lang: str, me: Staff) -> str:
    """My tasks' sidebar title, with how many are still open when some are."""
    with Session(context.engine()) as session:
        waiting = open_task_count(session, assignee_id=me.id) if me.id is not None else 0
    return t(lang, "page_tasks_open", n=waiting) if waiting else t(lang, "page_tasks")


def _pages(lang: str, me: Staff) -> list[st.Page]:
    """Return the pages ``me``'s role may open, in the sidebar's order."""
    pages: list[tuple[Action | None, str, str, str]] = [
        (Action.VIEW_QUEUE, "queue.py", "page_queue", ":material/inbox:"),
        (Action.VIEW_QUEUE, "crisis.py", "page_crisis", ":material/crisis_alert:"),
        (Action.VIEW_INBOX, "inbox.py", "page_inbox", ":material/person:"),
        (Action.COMPLETE_TASK, "tasks.py", "page_tasks", ":material/assignment_ind:"),
        (Action.APPROVE_REPLY, "approvals.py", "page_approvals", ":material/fact_check:"),
        (Action.SUBMIT_REPLY, "submissions.py", "page_submissions", ":material/outbox:"),
        (Action.VIEW_CUSTOMER, "customer.py", "page_customer", ":material/badge:"),
        (Action.VIEW_TRENDS, "trends.py", "page_trends", ":material/trending_up:"),
        (None, "overview.py", "page_overview", ":material/monitoring:"),
        (Action.EDIT_KNOWLEDGE, "knowledge.py", "page_knowledge", ":material/menu_book:"),
        # Not first: the first page is where a person lands, and marketing lands on trends.
        (None, "notifications.py", "page_notifications", ":material/notifications:"),
        (Action.ADMIN, "admin.py", "page_admin", ":material/settings:"),
    ]
    allowed = [p for p in pages if p[0] is None or can(me, p[0])]
    titles = {title: t(lang, title) for _, _, title, _ in allowed} | {
        "page_notifications": _notifications_title(lang, me),
        "page_tasks": _tasks_title(lang, me),
    }
    return [
        st.Page(PAGES_DIR / file, title=titles[title], icon=icon, url_path=file[:-3])
        for _, file, title, icon in allowed
    ]


def _hidden_pages(lang: str, me: Staff) -> list[st.Page]:
    """Pages opened from a link rather than the sidebar: one conversation (``/conversation?id=N``)."""
    if not can(me, Action.VIEW_INBOX):
        return []
    return [
        st.Page(PAGES_DIR / "conversation.py", title=t(lang, "page_conversation"), icon=":material/forum:",
                url_path="conversation")
    ]  # fmt: skip


def _navigate(lang: str, pages: list[st.Page], nav: DeltaGenerator, hidden: list[st.Page] | None = None) -> None:
    """Run the chosen page; ``/`` shows the first one.

    Streamlit serves its default page at ``/`` only, so a link to ``/queue`` would find no page if the queue were
    the default: ``/`` gets a copy of the first page of its own, and every page keeps its address for links.
    """
    first = pages[0]
    home = st.Page(
        PAGES_DIR / f"{first.url_path}.py", title=first.title, icon=first.icon, url_path="home", default=True
    )
    # An address the desk does not know (or one this role may not open) gets a page that says so, in the
    # person's language, instead of Streamlit's English dialog.
    known = [home, *pages, *(hidden or [])]
    with_missing = not_found.with_not_found(lang, known, pages, DESK_PATHS, passed=DESK_PATHS[0])
    chosen = st.navigation(with_missing, position="hidden")
    for page in pages:
        nav.page_link(page)
    chosen.run()


def main() -> None:
    """Run the desk; anything that goes wrong is logged in full and shown to the visitor as one short line."""
    st.set_page_config(page_title="Escucha", page_icon=str(ICON), layout="wide")
    try:
        # Before the language toggle: a tab signed in again from its cookie takes its person's language.
        context.restore()
        # The page links go above the language toggle, where Streamlit's own navigation sat.
        nav = st.sidebar.container()
        lang = _language_picker()
        context.cookie_scripts()
        _desk(lang, nav)
    except Exception:
        # Streamlit's own rerun and stop signals are BaseExceptions and pass through. The rest (a database that
        # is down, a bug) may name hosts, ports and files: for the log, not for whoever opened the page.
        log.exception("the review app failed to render")
        st.error(t(context.lang(), "app_error"))


def _desk(lang: str, nav: DeltaGenerator) -> None:
    """Lay out the sidebar and run the chosen page (the sign-in page until someone signs in)."""
    with Session(context.engine(), expire_on_commit=False) as session:
        has_staff = bool(session.execute(select(func.count()).select_from(Staff)).scalar_one())
        me = context.acting_staff(session)
    if not has_staff:
        st.title(t(lang, "app_title"))
        st.warning(t(lang, "no_staff"))
        return
    if me is None:
        # Every desk address shows the sign-in form, and keeps its address and query: once signed in, a link to a
        # page or a post (``/queue?post=12``) opens what it points at instead of "page not found".
        title = t(lang, "page_signin")
        # An unknown address too: once signed in, the desk says there is no such page, in the person's language.
        unknown = not_found.unknown_address(not_found.requested_address(DESK_PATHS), DESK_PATHS)
        paths = (*DESK_PATHS, unknown) if unknown else DESK_PATHS
        pages = [st.Page(signin.render, title=title, url_path=p, default=i == 0) for i, p in enumerate(paths)]
        st.navigation(pages, position="hidden").run()
        return
    if can(me, Action.VIEW_TRENDS):
        # The trends' complaint themes need the text encoder: load it while this person works elsewhere.
        from classifier.embed import warm_in_background  # torch is imported only where the themes may be needed

        warm_in_background()
    st.sidebar.markdown(f"**{md(me.name)}** · {code(lang, 'role', me.role)}")
    st.sidebar.button(t(lang, "signout"), key="signout", on_click=context.sign_out, icon=":material/logout:")
    _navigate(lang, _pages(lang, me), nav, _hidden_pages(lang, me))


main()
