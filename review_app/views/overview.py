"""The overview: the numbers of `escucha status`, each source's health and posts per hour by sentiment."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st
from sqlmodel import Session

from responder.status import collect_status
from review_app import context, fmt
from review_app.i18n import t
from review_app.labels import HOUR_FORMAT, chart_locale, code
from review_app.queries import HourCount, posts_per_hour
from review_app.safe import plain

CHART_HOURS = 48
SENTIMENT_DOMAIN = ["negative", "neutral", "positive", "unscored"]
SENTIMENT_RANGE = ["#d62728", "#9e9e9e", "#2ca02c", "#c7c7c7"]


def counts_frame(lang: str, counts: dict[str, int], group: str | None = None) -> pd.DataFrame:
    """Return a two-column table (name, count) of a grouped count, largest first; ``group`` names its codes."""
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def name(key: str) -> str:
        if group == "network":
            return fmt.network(key)
        return code(lang, group, key) if group else key

    return pd.DataFrame(
        {t(lang, "col_name"): [plain(name(k)) for k, _ in rows], t(lang, "col_count"): [v for _, v in rows]}
    )


def sources_frame(sources: list[dict[str, Any]], lang: str) -> pd.DataFrame:
    """Return the sources' health as a table in ``lang``; error texts come from networks, so they are cleaned."""
    frame = pd.DataFrame(sources)
    for column in ("last_error", "cursor"):
        if column in frame:
            frame[column] = frame[column].map(lambda v: plain(v) if isinstance(v, str) else v)
    if "network" in frame:
        frame["network"] = frame["network"].map(fmt.network)
    if "source" in frame:
        frame["source"] = frame["source"].map(lambda v: code(lang, "source", v))
    return frame.rename(columns=lambda name: code(lang, "column", name))


def hourly_chart(lang: str, rows: list[HourCount]) -> alt.Chart:
    """Return a stacked bar chart of posts per hour, coloured by sentiment."""
    frame = pd.DataFrame(
        {
            "hour": [r.hour for r in rows],
            # The legend shows the data's values: they are the words, the colours follow them.
            "sentiment": [code(lang, "sentiment", r.sentiment) for r in rows],
            "posts": [r.count for r in rows],
        }
    )
    return (
        alt.Chart(frame)
        # The hour time unit gives each bar its hour's full band instead of a hairline at an instant.
        .mark_bar(width=alt.RelativeBandSize(0.9))
        .encode(
            x=alt.X("yearmonthdatehours(hour):T", title=t(lang, "col_hour"), axis=alt.Axis(format=HOUR_FORMAT)),
            y=alt.Y("sum(posts):Q", title=t(lang, "posts_total")),
            color=alt.Color(
                "sentiment:N",
                scale=alt.Scale(domain=[code(lang, "sentiment", s) for s in SENTIMENT_DOMAIN], range=SENTIMENT_RANGE),
                title=t(lang, "sentiment"),
            ),
            tooltip=[
                alt.Tooltip("hour:T", title=code(lang, "column", "hour"), format=HOUR_FORMAT),
                alt.Tooltip("sentiment:N", title=t(lang, "sentiment")),
                alt.Tooltip("posts:Q", title=t(lang, "tooltip_posts")),
            ],
        )
        .configure(locale=chart_locale(lang))
    )


def render() -> None:
    """Render the overview page."""
    lang = context.lang()
    st.title(t(lang, "overview_title"))
    with Session(context.engine()) as session:
        status = collect_status(session)
        hourly = posts_per_hour(session, hours=CHART_HOURS)
    oldest = status["oldest_unanswered_public_s"]
    cols = st.columns(5)
    cols[0].metric(t(lang, "posts_total"), status["posts"])
    cols[1].metric(t(lang, "needing_response"), status["needing_response"])
    cols[2].metric(t(lang, "unassigned_public"), status["unassigned_public"])
    cols[3].metric(t(lang, "unassigned_dm"), status["unassigned_dm"])
    cols[4].metric(t(lang, "oldest_unanswered"), fmt.duration(oldest) if oldest is not None else t(lang, "none"))

    tables = st.columns(4)
    for column, key, counts, group in (
        (tables[0], "by_network", status["posts_by_network"], "network"),
        (tables[1], "by_kind", status["posts_by_kind"], "kind"),
        (tables[2], "by_status", status["posts_by_status"], "status"),
        (tables[3], "replies_by_state", status["replies_by_state"], "state"),
    ):
        column.subheader(t(lang, key))
        column.dataframe(counts_frame(lang, counts, group), hide_index=True, width="stretch")

    st.subheader(t(lang, "sources"))
    if status["sources"]:
        st.dataframe(sources_frame(status["sources"], lang), hide_index=True, width="stretch")
    else:
        st.caption(t(lang, "no_sources"))

    st.subheader(t(lang, "per_hour", hours=CHART_HOURS))
    if hourly:
        st.altair_chart(hourly_chart(lang, hourly), width="stretch")
    else:
        st.caption(t(lang, "no_recent_posts"))


if __name__ == "__main__":
    render()
