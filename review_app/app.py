"""The review desk's entry point: `streamlit run review_app/app.py`.

The sidebar picks the interface language and who is acting; the pages live in ``review_app/views``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from sqlmodel import Session

from models.staff import list_staff
from models.tables import Staff
from review_app import context
from review_app.i18n import DEFAULT_LANGUAGE, LANGUAGES, label, t

# Not "pages/": Streamlit would list that folder as a second, automatic navigation before ours loads.
PAGES_DIR = Path(__file__).resolve().parent / "views"


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
    )
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def _staff_picker(lang: str, team: list[Staff]) -> None:
    """Show the "Acting as" select; sign-in replaces it in a later version."""
    by_id = {member.id: member for member in team if member.id is not None}
    if st.session_state.get(context.STAFF_KEY) not in by_id:
        st.session_state[context.STAFF_KEY] = next(iter(by_id))
    st.sidebar.selectbox(
        t(lang, "acting_as"),
        options=list(by_id),
        format_func=lambda sid: f"{by_id[sid].name} · {label(lang, 'role', by_id[sid].role)}",
        key=context.STAFF_KEY,
        help=t(lang, "acting_as_help"),
    )


def main() -> None:
    """Lay out the sidebar and run the chosen page."""
    st.set_page_config(page_title="Escucha", page_icon=":material/forum:", layout="wide")
    lang = _language_picker()
    with Session(context.engine()) as session:
        team = list_staff(session)
    if not team:
        st.title(t(lang, "app_title"))
        st.warning(t(lang, "no_staff"))
        return
    _staff_picker(lang, team)
    page = st.navigation(
        [
            st.Page(
                PAGES_DIR / "queue.py",
                title=t(lang, "page_queue"),
                icon=":material/inbox:",
                url_path="queue",
                default=True,
            ),
            st.Page(
                PAGES_DIR / "overview.py",
                title=t(lang, "page_overview"),
                icon=":material/monitoring:",
                url_path="overview",
            ),
        ]
    )
    page.run()


main()
