"""The queue's filters in the page address (``/queue?kind=search&sentiment=negative&assignee=me``).

A link to a filtered queue opens that queue, a reload keeps it, and the address bar always says what is shown.
Only values the widget offers are taken from an address; anything else in it is ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import streamlit as st

# Address parameter → the queue's widget (its session key is ``queue_<name>s_<lang>``).
LISTS = ("network", "kind", "language", "sentiment", "status")
ASSIGNEE = "assignee"


def widget_key(name: str, lang: str) -> str:
    """Return the session key of the queue's filter widget for address parameter ``name``."""
    return f"queue_{name}_{lang}" if name == ASSIGNEE else f"queue_{name}s_{lang}"


def _loaded_key(lang: str) -> str:
    return f"queue_url_loaded_{lang}"


def load(lang: str, offered: Mapping[str, Sequence[str]], assignees: Sequence[int], words: Mapping[str, int]) -> None:
    """Set the filter widgets from the address once per language, before they are drawn.

    ``words`` names the assignee choices that are not staff ids (``me``, ``unassigned``) as an address says them.
    """
    if st.session_state.get(_loaded_key(lang)):
        return
    st.session_state[_loaded_key(lang)] = True
    for name in LISTS:
        wanted = [v for v in st.query_params.get_all(name) if v in offered.get(name, ())]
        if wanted:
            st.session_state[widget_key(name, lang)] = list(dict.fromkeys(wanted))
    raw = st.query_params.get(ASSIGNEE)
    if raw is not None:
        value = words.get(raw, int(raw) if raw.isdigit() else None)
        if value is not None and value in assignees:
            st.session_state[widget_key(ASSIGNEE, lang)] = value


def save(chosen: Mapping[str, Sequence[str]], assignee: int | None, words: Mapping[str, int]) -> None:
    """Write the chosen filters into the address (the language and post parameters are left as they are)."""
    for name in LISTS:
        values = list(chosen.get(name, ()))
        if values != st.query_params.get_all(name):
            if values:
                st.query_params[name] = values
            else:
                st.query_params.pop(name, None)
    names = {v: k for k, v in words.items()}
    shown = None if not assignee else names.get(assignee, str(assignee))
    if shown is None:
        st.query_params.pop(ASSIGNEE, None)
    elif st.query_params.get(ASSIGNEE) != shown:
        st.query_params[ASSIGNEE] = shown
