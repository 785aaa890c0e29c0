"""The desk's own "page not found": in the person's language, saying why, with a link to each page they may open.

Streamlit's built-in one is an English dialog that only says it runs the main page instead. The desk answers an
address it does not know with this page under that address, so the link someone followed stays visible.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx
from streamlit.util import calc_hash

from review_app.i18n import t
from review_app.safe import md

# What Streamlit accepts as a page's address (one path segment); anything else is left to Streamlit.
_ADDRESS = re.compile(r"[A-Za-z0-9_-]{1,100}")


LAST_KEY = "not_found_address"


def requested_address(candidates: Sequence[str] = ()) -> str | None:
    """Return the page address this run was asked for (``/admin`` → ``admin``), or None.

    A page load names the address; a rerun (a click) names only the hash of the page it ran on, which is matched
    against ``candidates`` and the last unknown address this browser asked for.
    """
    ctx = get_script_run_ctx()
    if ctx is None:
        return None
    name = ctx.pages_manager.intended_page_name
    if name:
        return str(name)
    wanted = ctx.pages_manager.intended_page_script_hash
    last = st.session_state.get(LAST_KEY)
    for address in [*candidates, *([last] if isinstance(last, str) else [])]:
        if wanted and calc_hash(address) == wanted:
            return address
    return None


def unknown_address(requested: str | None, known: Sequence[str]) -> str | None:
    """Return ``requested`` when it names no page in ``known`` and can be a page address; else None."""
    if not requested or requested in known or not _ADDRESS.fullmatch(requested):
        return None
    st.session_state[LAST_KEY] = requested
    return requested


def page(lang: str, address: str, links: Sequence[st.Page]) -> st.Page:
    """Return a hidden page at ``address`` that says it does not exist and links to ``links``."""

    def render() -> None:
        st.title(t(lang, "not_found_title"))
        st.markdown(md(t(lang, "not_found_body", address=f"/{address}")))
        st.markdown(f"**{md(t(lang, 'not_found_links'))}**")
        for target in links:
            st.page_link(target)

    render.__name__ = f"not_found_{address}"  # Streamlit names a callable page's script after its function
    return st.Page(render, title=t(lang, "not_found_title"), url_path=address)


def with_not_found(
    lang: str, pages: list[st.Page], links: Sequence[st.Page], candidates: Sequence[str] = (), passed: str = ""
) -> list[st.Page]:
    """Return ``pages`` plus a "page not found" page when the browser asked for an address none of them has.

    ``candidates`` are addresses that may have been asked for on an earlier run (every desk page's); ``passed`` is
    one left to Streamlit, which opens the first page for it (the sign-in page's, once signed in).
    """
    known = [p.url_path for p in pages] + ([passed] if passed else [])
    address = unknown_address(requested_address([c for c in candidates if c != passed]), known)
    return [*pages, page(lang, address, links)] if address else pages
