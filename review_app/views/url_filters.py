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


# One-value parameters (a select box, not a list): the crisis lane and the answer filter, the crisis view's state.
SINGLES = ("lane", "answer")


def widget_key(name: str, lang: str, page: str = "queue") -> str:
    """Return the session key of a page's filter widget for address parameter ``name``."""
    return f"{page}_{name}_{lang}" if name == ASSIGNEE or name not in LISTS else f"{page}_{name}s_{lang}"


def _loaded_key(lang: str, page: str) -> str:
    return f"{page}_url_loaded_{lang}"


def load(
    lang: str,
    offered: Mapping[str, Sequence[str]],
    assignees: Sequence[int],
    words: Mapping[str, int],
    page: str = "queue",
    singles: Sequence[str] = SINGLES,
) -> None:
    """Set the filter widgets from the address once per language, before they are drawn.

    ``words`` names the assignee choices that are not staff ids (``me``, ``unassigned``) as an address says them;
    ``singles`` are one-value parameters, taken when ``offered`` lists the value.
    """
    if st.session_state.get(_loaded_key(lang, page)):
        return
    st.session_state[_loaded_key(lang, page)] = True
    for name in LISTS:
        wanted = [v for v in st.query_params.get_all(name) if v in offered.get(name, ())]
        if wanted:
            st.session_state[widget_key(name, lang, page)] = list(dict.fromkeys(wanted))
    for name in singles:
        one = st.query_params.get(name)
        if one is not None and one in offered.get(name, ()):
            st.session_state[widget_key(name, lang, page)] = one
    raw = st.query_params.get(ASSIGNEE)
    if raw is not None:
        value = words.get(raw, int(raw) if raw.isdigit() else None)
        if value is not None and value in assignees:
            st.session_state[widget_key(ASSIGNEE, lang, page)] = value


def save_singles(chosen: Mapping[str, str | None]) -> None:
    """Write one-value filters into the address; ``None`` (the default choice) leaves the parameter out."""
    for name, value in chosen.items():
        if value is None:
            st.query_params.pop(name, None)
        elif st.query_params.get(name) != value:
            st.query_params[name] = value


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
