"""Trends for marketing: sentiment share over time, volume spikes, complaint topics, response times, satisfaction.

Every chart has a CSV download of exactly the table it draws.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st
from sqlmodel import Session

from ground.settings import get_settings
from networks.registry import NETWORKS
from responder.permissions import Action
from review_app import context, fmt
from review_app.i18n import t, tn
from review_app.labels import DAY_FORMAT, HOUR_FORMAT, chart_locale, code, number
from review_app.trends import (
    brand_words,
    complaint_topics,
    keyword_groups,
    posts_frame,
    response_times,
    satisfaction,
    sentiment_share,
    to_csv,
    volume_with_spikes,
)

SENTIMENT_DOMAIN = ["negative", "neutral", "positive", "unscored"]
SENTIMENT_RANGE = ["#d62728", "#9e9e9e", "#2ca02c", "#c7c7c7"]
GROUPS = ("network", "language", "keyword")


def _download(lang: str, frame: pd.DataFrame, name: str) -> None:
    st.download_button(
        t(lang, "download_csv"), to_csv(frame), file_name=f"escucha-{name}.csv", mime="text/csv", key=f"csv_{name}"
    )


def _group_word(lang: str, by: str, value: object) -> str:
    """Return a chart group's name: a network's, a language's, or the keyword as typed."""
    if by == "network":
        return fmt.network(str(value))
    return code(lang, "language", str(value)) if by == "language" else str(value)


def share_chart(lang: str, share: pd.DataFrame, by: str = "group") -> alt.Chart:
    """Return stacked 100 % bars of sentiment per day, one row of charts per group."""
    # The legend and the row headers show the data's values, so the codes become words before drawing.
    shown = share.assign(
        sentiment=share["sentiment"].map(lambda v: code(lang, "sentiment", str(v))),
        group=share["group"].map(lambda v: _group_word(lang, by, v)),
    )
    title = {name: code(lang, "column", name) for name in ("day", "group", "sentiment", "posts", "share")}
    return (
        alt.Chart(shown)
        .mark_bar()
        .encode(
            x=alt.X("yearmonthdate(day):T", title=None, axis=alt.Axis(format=DAY_FORMAT)),
            y=alt.Y("sum(share):Q", axis=alt.Axis(format="%"), title=None),
            color=alt.Color(
                "sentiment:N",
                scale=alt.Scale(domain=[code(lang, "sentiment", s) for s in SENTIMENT_DOMAIN], range=SENTIMENT_RANGE),
                title=t(lang, "sentiment"),
            ),
            row=alt.Row("group:N", title=None),
            tooltip=[
                alt.Tooltip("day:T", title=title["day"], format=DAY_FORMAT),
                alt.Tooltip("group:N", title=title["group"]),
                alt.Tooltip("sentiment:N", title=title["sentiment"]),
                alt.Tooltip("posts:Q", title=title["posts"]),
                alt.Tooltip("share:Q", title=title["share"], format=".0%"),
            ],
        )
        .properties(height=120)
        .configure(locale=chart_locale(lang))
    )


def volume_chart(volume: pd.DataFrame, lang: str) -> alt.LayerChart:
    """Return posts per hour as a line, the baseline dashed, and spikes as red points."""
    base = alt.Chart(volume).encode(x=alt.X("hour:T", title=None, axis=alt.Axis(format=DAY_FORMAT)))
    tooltip = [
        alt.Tooltip("hour:T", title=code(lang, "column", "hour"), format=HOUR_FORMAT),
        alt.Tooltip("posts:Q", title=code(lang, "column", "posts")),
        alt.Tooltip("baseline:Q", title=code(lang, "column", "baseline")),
    ]
    line = base.mark_line().encode(y=alt.Y("posts:Q", title=None), tooltip=tooltip)
    baseline = base.mark_line(strokeDash=[4, 3], color="#9e9e9e").encode(y="baseline:Q")
    spikes = (
        base.transform_filter(alt.datum.spike).mark_point(color="#d62728", size=90, filled=True).encode(y="posts:Q")
    )
    return (line + baseline + spikes).configure(locale=chart_locale(lang))


def render() -> None:
    """Render the trends page."""
    lang = context.lang()
    st.title(t(lang, "trends_title"))
    with Session(context.engine()) as session:
        me = context.allowed_staff(session, lang, action=Action.VIEW_TRENDS, refused="trends_not_allowed")
        if me is None:
            return
        left, mid, right = st.columns([1, 1, 2])
        days = int(left.number_input(t(lang, "trends_days"), min_value=1, max_value=90, value=14, key="trends_days"))
        group = mid.selectbox(
            t(lang, "trends_group"), GROUPS, format_func=lambda g: t(lang, f"group_{g}"), key="trends_group"
        )
        words = right.text_input(t(lang, "trends_keywords"), key="trends_keywords")
        frame = posts_frame(session, days=days)
        ratings = satisfaction(session, days=days)
    if frame.empty:
        st.info(t(lang, "trends_empty"))
        return

    st.subheader(t(lang, "share_title"))
    keywords = [w.strip() for w in words.split(",") if w.strip()]
    grouped = keyword_groups(frame, keywords) if group == "keyword" else frame
    share = sentiment_share(grouped, by="group" if group == "keyword" else group)
    if not share.empty:
        st.altair_chart(share_chart(lang, share, by=group), width="stretch")
    _download(lang, share, "sentiment-share")

    st.subheader(t(lang, "volume_title"))
    volume = volume_with_spikes(frame)
    st.altair_chart(volume_chart(volume, lang), width="stretch")
    spikes = int(volume["spike"].sum())
    st.caption(tn(lang, "spikes", spikes) if spikes else t(lang, "no_spikes"))
    _download(lang, volume, "volume")

    topics_col, times_col = st.columns(2)
    with topics_col:
        st.subheader(t(lang, "topics_title"))
        settings = get_settings()
        terms = [term for spec in NETWORKS.values() for term in spec.settings_of(settings).brand_terms()]
        brand = brand_words(*terms)
        topics = complaint_topics(frame, leave_out=brand)
        # A dataframe shows cells as plain text: topic words from posts cannot render as markup.
        st.dataframe(topics.rename(columns=lambda c: code(lang, "column", c)), hide_index=True, width="stretch")
        _download(lang, topics, "complaint-topics")
    with times_col:
        st.subheader(t(lang, "frt_title"))
        times = response_times(frame)
        a, b, c, d = st.columns(4)
        a.metric(t(lang, "frt_median"), fmt.duration(times["median_s"]) if times["median_s"] is not None else "—")
        b.metric(t(lang, "frt_p90"), fmt.duration(times["p90_s"]) if times["p90_s"] is not None else "—")
        attained = times["sla_attainment"]
        c.metric(t(lang, "sla_attainment"), f"{attained:.0%}" if attained is not None else "—")
        d.metric(t(lang, "answered"), int(times["answered"] or 0))
        _download(lang, pd.DataFrame([times]), "first-response")
        st.subheader(t(lang, "satisfaction_title"))
        answers = int(ratings["answers"].sum())
        mean = float((ratings["score"] * ratings["answers"]).sum() / answers) if answers else None
        e, f = st.columns(2)
        e.metric(t(lang, "satisfaction_avg"), number(lang, f"{mean:.2f}") if mean is not None else "—")
        f.metric(t(lang, "satisfaction_n"), answers)
        st.altair_chart(
            alt.Chart(ratings)
            .mark_bar()
            .encode(
                x=alt.X("score:O", title=code(lang, "column", "score")),
                y=alt.Y("answers:Q", title=code(lang, "column", "answers")),
            )
            .configure(locale=chart_locale(lang)),
            width="stretch",
        )
        _download(lang, ratings, "satisfaction")


if __name__ == "__main__":
    render()
