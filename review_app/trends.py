"""The numbers behind the trends page: sentiment share, volume spikes, complaint themes, response times, CSAT."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlmodel import Session, col

from models.tables import Post, PostKind, Reply, ReplyKind, ReplyState, Satisfaction, Score, utcnow
from models.vectors import cached_vectors, keep_vectors
from review_app.safe import plain
from review_app.themes import Theme, find_themes, weekly_movement

if TYPE_CHECKING:
    from classifier.embed import Embedder

BASELINE_HOURS = 24
SPIKE_SIGMAS = 3.0
SPIKE_MIN_POSTS = 5
COMPLAINT_AT = 0.5
# The newest complaints this many are grouped into themes: a busy fortnight, grouped in under a second.
MAX_THEMED = 1000
_WORD = re.compile(r"[^\W\d_]{4,}", re.UNICODE)
# Handles (ours above all) and links say who and where, not what went wrong.
_NOT_TOPICS = re.compile(r"@\w+|https?://\S+|www\.\S+")
# Function words of both languages and words every complaint shares; what is left says what hurts.
STOPWORDS = frozenset(
    [
        "casi",
        "cosas",
        "estoy",
        "siempre",
        "solo",
        "this",
        "that",
        "with",
        "have",
        "what",
        "when",
        "where",
        "your",
        "from",
        "they",
        "them",
        "their",
        "there",
        "been",
        "were",
        "will",
        "would",
        "could",
        "just",
        "about",
        "still",
        "please",
        "thanks",
        "thank",
        "again",
        "very",
        "more",
        "than",
        "like",
        "after",
        "before",
        "into",
        "over",
        "only",
        "even",
        "esto",
        "esta",
        "este",
        "estos",
        "estas",
        "para",
        "pero",
        "como",
        "cuando",
        "donde",
        "porque",
        "desde",
        "hasta",
        "sobre",
        "tengo",
        "tiene",
        "tienen",
        "hace",
        "hacer",
        "nada",
        "todo",
        "todos",
        "todas",
        "otra",
        "otro",
        "ayer",
        "mucho",
        "muy",
        "sigue",
        "siguen",
        "nunca",
        "ahora",
        "gracias",
        "hola",
        "favor",
        "mismo",
        "misma",
        "cual",
        "aqui",
        "aquí",
        "también",
        "tambien",
    ]
)
# Spreadsheets run a cell that starts with these as a formula (CSV injection); post text is data.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# The trends page offers 1 to 90 days; the functions accept up to ten years, never a span the clock cannot take.
MAX_DAYS = 3650


def check_days(days: int) -> int:
    """Return ``days`` if it is a span the trends can cover (1 to ``MAX_DAYS``), else raise ``ValueError``."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days from 1 to {MAX_DAYS}")
    return days


def posts_frame(session: Session, *, days: int, now: datetime | None = None) -> pd.DataFrame:
    """Return one row per post of the last ``days``: time, network, language, sentiment, complaint, text, due."""
    since = (now or utcnow()) - timedelta(days=check_days(days))
    first_answer = (
        select(col(Reply.post_id), func.min(col(Reply.sent_at)).label("answered_at"))
        .where(col(Reply.kind) == ReplyKind.ANSWER, col(Reply.state) == ReplyState.SENT)
        .group_by(col(Reply.post_id))
        .subquery()
    )
    stmt = (
        select(
            col(Post.id),
            col(Post.created_at),
            col(Post.network),
            col(Post.kind),
            func.coalesce(col(Score.language), col(Post.lang), "und"),
            func.coalesce(col(Score.sentiment), "unscored"),
            func.coalesce(col(Score.complaint), 0.0),
            col(Post.text),
            col(Post.due_at),
            col(Post.needs_response),
            first_answer.c.answered_at,
        )
        .outerjoin(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(first_answer, first_answer.c.post_id == col(Post.id))
        .where(col(Post.created_at) >= since, col(Post.kind) != PostKind.OWN)
    )
    columns = ["id", "created_at", "network", "kind", "language", "sentiment", "complaint", "text", "due_at",
               "needs_response", "answered_at"]  # fmt: skip
    frame = pd.DataFrame(session.execute(stmt).all(), columns=columns)
    for name in ("created_at", "due_at", "answered_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame


def keyword_groups(frame: pd.DataFrame, keywords: list[str]) -> pd.DataFrame:
    """Return the rows that mention each keyword, one copy per keyword, with a ``group`` column."""
    parts = []
    for word in keywords:
        hit = frame[frame["text"].str.contains(word, case=False, regex=False, na=False)]
        parts.append(hit.assign(group=word))
    return pd.concat(parts) if parts else frame.iloc[0:0].assign(group=[])


def granularity(frame: pd.DataFrame, days: int) -> str:
    """Return the bar width that fits the posts' span: ``h`` up to two days, ``D`` up to ten weeks, else ``W``.

    The span is the posts' own (a fortnight chosen over six hours of posts is six hours of hourly bars), so the
    chart never collapses into a single block.
    """
    span = timedelta(days=days)
    if not frame.empty:
        span = min(span, (frame["created_at"].max() - frame["created_at"].min()).to_pytimedelta())
    if span <= timedelta(days=2):
        return "h"
    return "D" if span <= timedelta(days=70) else "W"


def floor_to(stamps: pd.Series, freq: str) -> pd.Series:
    """Return each time's period start: the hour, the day, or the Monday of its week (UTC)."""
    if freq == "W":
        days = stamps.dt.floor("D")
        return days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    return stamps.dt.floor(freq)


def sentiment_share(frame: pd.DataFrame, *, by: str, freq: str = "D") -> pd.DataFrame:
    """Return, per period (``freq``: h, D or W) and group, each sentiment's share of the posts (0..1) and the count."""
    if frame.empty:
        return pd.DataFrame(columns=["period", "group", "sentiment", "posts", "share"])
    data = frame.assign(period=floor_to(frame["created_at"], freq), group=frame[by])
    counts = data.groupby(["period", "group", "sentiment"]).size().rename("posts").reset_index()
    totals = counts.groupby(["period", "group"])["posts"].transform("sum")
    return counts.assign(share=counts["posts"] / totals)


def volume_with_spikes(frame: pd.DataFrame) -> pd.DataFrame:
    """Return posts per hour, the rolling baseline of the previous hours, and whether each hour is a spike."""
    if frame.empty:
        return pd.DataFrame(columns=["hour", "posts", "baseline", "spike"])
    hourly = frame.set_index("created_at").resample("h").size().rename("posts").to_frame()
    # The baseline leaves the hour itself out, so a spike cannot raise its own bar.
    previous = hourly["posts"].shift(1).rolling(BASELINE_HOURS, min_periods=3)
    mean, std = previous.mean(), previous.std().fillna(0.0)
    threshold = mean + SPIKE_SIGMAS * std.clip(lower=1.0)
    hourly["baseline"] = mean.round(2)
    hourly["spike"] = (hourly["posts"] >= SPIKE_MIN_POSTS) & (hourly["posts"] > threshold.fillna(float("inf")))
    return hourly.reset_index(names="hour")


def brand_words(*terms: str | None) -> frozenset[str]:
    """The words of the brand's own names and search query, which every hit contains and so say nothing."""
    words: set[str] = set()
    for term in terms:
        if term:
            # A search query's operators (OR, -is:retweet, lang:es) are not words of the brand either.
            words.update(w.lower() for w in _WORD.findall(re.sub(r"\S+:\S+", " ", term)))
    return frozenset(words)


def complaint_topics(frame: pd.DataFrame, *, top: int = 12, leave_out: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Return the words that come up most in complaints (complaint score ≥ 0.5), one count per post.

    ``leave_out`` holds the brand's own words (``brand_words``): every keyword hit contains them.
    """
    counter: Counter[str] = Counter()
    for text in frame.loc[frame["complaint"] >= COMPLAINT_AT, "text"]:
        words = {w.lower() for w in _WORD.findall(_NOT_TOPICS.sub(" ", plain(text)))}
        counter.update(w for w in words if w not in STOPWORDS and w not in leave_out)
    # Ties in alphabetical order, so the table and its CSV are the same on every run.
    rows = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return pd.DataFrame({"topic": [w for w, _ in rows], "posts": [n for _, n in rows]})


def post_vectors(session: Session, posts: pd.DataFrame, embedder: Embedder) -> np.ndarray:
    """Return one vector per row of ``posts`` (``id``, ``text``): kept ones from the cache, the rest made and kept."""
    ids = [int(v) for v in posts["id"]]
    found = cached_vectors(session, ids, embedder.model_id)
    missing = [i for i in ids if i not in found]
    if missing:
        texts = dict(zip(ids, (str(v) for v in posts["text"]), strict=True))
        made = embedder.embed([texts[i] for i in missing])
        fresh = dict(zip(missing, made, strict=True))
        keep_vectors(session, fresh, embedder.model_id)
        found.update(fresh)
    return np.array([found[i] for i in ids], dtype=np.float32).reshape(len(ids), -1)


def complaint_themes(
    session: Session, frame: pd.DataFrame, embedder: Embedder, *, leave_out: frozenset[str] = frozenset()
) -> tuple[list[Theme], pd.DataFrame]:
    """Return the complaint themes of ``frame`` (complaint score ≥ 0.5) and their posts per week."""
    complaints = frame[frame["complaint"] >= COMPLAINT_AT].sort_values("created_at").tail(MAX_THEMED)
    if complaints.empty:
        return [], weekly_movement([], pd.Series(dtype="datetime64[ns, UTC]"))
    vectors = post_vectors(session, complaints, embedder)
    themes = find_themes(complaints.reset_index(drop=True), vectors, leave_out=leave_out)
    created = pd.Series(complaints["created_at"].to_numpy(), index=complaints["id"].astype(int).to_numpy())
    return themes, weekly_movement(themes, created)


def response_times(frame: pd.DataFrame, *, now: datetime | None = None) -> dict[str, float | int | None]:
    """Return first-response median and p90 (seconds), how many were answered, and SLA attainment (0..1)."""
    now = now or utcnow()
    wanted = frame[frame["needs_response"].fillna(False).astype(bool)]
    answered = wanted.dropna(subset=["answered_at"])
    waits = (answered["answered_at"] - answered["created_at"]).dt.total_seconds()
    timed = wanted.dropna(subset=["due_at"])
    # A post counts once its clock ran out or it was answered; one still inside its window is not judged yet.
    judged = timed[(timed["due_at"] <= pd.Timestamp(now)) | timed["answered_at"].notna()]
    met = judged["answered_at"].notna() & (judged["answered_at"] <= judged["due_at"])
    return {
        "answered": len(answered),
        "median_s": float(waits.median()) if len(waits) else None,
        "p90_s": float(waits.quantile(0.9)) if len(waits) else None,
        "sla_attainment": float(met.mean()) if len(judged) else None,
        "judged": len(judged),
    }


def satisfaction(session: Session, *, days: int, now: datetime | None = None) -> pd.DataFrame:
    """Return how many customers answered each rating 1..5 in the last ``days``."""
    since = (now or utcnow()) - timedelta(days=check_days(days))
    rows = session.execute(
        select(col(Satisfaction.score), func.count())
        .where(
            col(Satisfaction.score).is_not(None),
            col(Satisfaction.answered_at) >= since,
            col(Satisfaction.scale) == 5,  # the promoter question's 0–10 answers are another measure
        )
        .group_by(col(Satisfaction.score))
    ).all()
    found = {int(s): int(n) for s, n in rows}
    return pd.DataFrame({"score": list(range(1, 6)), "answers": [found.get(s, 0) for s in range(1, 6)]})


def satisfaction_over_time(session: Session, *, days: int, freq: str, now: datetime | None = None) -> pd.DataFrame:
    """Return, per period, how many rated, the mean rating and CSAT (the share of 4s and 5s, 0..1)."""
    since = (now or utcnow()) - timedelta(days=check_days(days))
    rows = session.execute(
        select(col(Satisfaction.answered_at), col(Satisfaction.score)).where(
            col(Satisfaction.score).is_not(None), col(Satisfaction.answered_at) >= since
        )
    ).all()
    columns = ["period", "answers", "mean", "csat"]
    if not rows:
        return pd.DataFrame(columns=columns)
    data = pd.DataFrame(rows, columns=["answered_at", "score"])
    data["period"] = floor_to(pd.to_datetime(data["answered_at"], utc=True), freq)
    grouped = data.groupby("period")["score"]
    out = pd.DataFrame(
        {"answers": grouped.size(), "mean": grouped.mean().round(2), "csat": grouped.apply(lambda s: (s >= 4).mean())}
    )
    return out.reset_index()[columns]


def channel_of(kind: str) -> str:
    """Return the channel a post kind is answered on: ``dm`` for direct messages, else ``public``."""
    return "dm" if kind == PostKind.DM else "public"


def response_by_channel(frame: pd.DataFrame, *, now: datetime | None = None) -> pd.DataFrame:
    """Return first response (median, p90) and SLA attainment for each network and channel with posts to answer."""
    columns = ["network", "channel", "answered", "median_s", "p90_s", "sla_attainment", "judged"]
    wanted = frame[frame["needs_response"].fillna(False).astype(bool)]
    if wanted.empty:
        return pd.DataFrame(columns=columns)
    keyed = wanted.assign(channel=wanted["kind"].map(channel_of))
    rows = [
        {"network": network, "channel": channel, **response_times(group, now=now)}
        for (network, channel), group in keyed.groupby(["network", "channel"], sort=True)
    ]
    return pd.DataFrame(rows, columns=columns)


def to_csv(frame: pd.DataFrame) -> bytes:
    """Return the frame as UTF-8 CSV with text cells defused against spreadsheet formulas."""

    def defuse(value: object) -> object:
        if isinstance(value, str):
            value = plain(value)
            return "'" + value if value.startswith(_FORMULA_START) else value
        return value

    out = frame.copy()
    for name in out.columns:
        if pd.api.types.is_object_dtype(out[name]) or pd.api.types.is_string_dtype(out[name]):
            out[name] = out[name].map(defuse)
    for name in out.select_dtypes(include=["datetimetz", "datetime"]).columns:
        out[name] = out[name].map(lambda v: v.astimezone(UTC).isoformat() if pd.notna(v) else "")
    return out.to_csv(index=False).encode("utf-8")
