"""Complaint themes found by meaning: posts grouped by their sentence vectors, named by their key phrases.

Spanish and English posts are grouped together: each language's mean vector is taken out first, so what is
left is what a post is about rather than which language it is written in. Posts are joined by average linkage
while their groups stay close (like HDBSCAN, the number of themes is found, not chosen, and a post close to no
other fits no theme instead of blurring one); each theme is named by class-based TF-IDF over its posts (the
words that are frequent in it and rare in the others) and shown with the post nearest its centre.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from review_app.safe import plain

MIN_POSTS = 4  # fewer complaints than this are read one by one, not grouped
# Two groups join while their posts' mean cosine similarity (after each language's mean is taken out) is at
# least this: on the demo and the test set, posts about one thing sit at 0.15 to 0.5 and unrelated ones below 0.
JOINED_AT = 0.15
# A theme holds at least three posts and 2 % of the complaints; the rest fit no theme (one-off chatter).
MIN_THEME_POSTS = 3
MIN_THEME_SHARE = 0.02
KEY_PHRASES = 4
# Words of three letters and more, letters only (numbers such as order ids say which post, not what).
_TOKEN = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_NOT_WORDS = re.compile(r"@\w+|#|https?://\S+|www\.\S+")

# Function words and words every complaint shares, in both languages: what is left says what hurts.
STOP_WORDS = frozenset(
    """
    the and for are but not you your yours our ours this that these those with have has had was were been being
    what when where which who whom why how all any both each few more most other some such only own same than too
    very can will just don should now from into onto over under again further then once here there about above
    below after before between through during out off they them their theirs she her hers him his its itself
    myself yourself ourselves themselves would could might must shall also still even ever never yet please thanks
    thank thx hello dear one two get got getting let make made say said going gone come came want need know
    really much many like just way day days time week weeks today yesterday tomorrow since ago back well
    anyone someone something nothing everything everyone nobody able done doing does did use used user amp
    isn aren wasn weren hasn haven hadn doesn didn won wouldn couldn shouldn can cannot
    uno una unos unas los las del por para con sin sobre entre hasta desde hacia según que qué quien quién
    como cómo cuando cuándo donde dónde cual cuál porque pero sino aunque más menos muy mucho mucha muchos
    muchas poco poca todo toda todos todas nada algo alguien nadie este esta esto estos estas ese esa eso esos
    esas aquel aquella ahí aquí allí ahora hoy ayer mañana siempre nunca jamás ya aún todavía otra otro otros
    otras mismo misma tan tanto tanta sus mis tus nos les ese soy eres son somos estoy está están estamos
    estaba estado era fue fui han hay había haber hace hacer hecho tengo tiene tienen tenía tener puedo puede
    pueden poder quiero quiere necesito sigue siguen sigo vez veces día días semana semanas gracias hola
    favor bien mal buenas buenos señor señora usted ustedes vosotros ellos ellas él ella yo tú
    """.split()  # noqa: SIM905  (a word list reads better as words than as 300 quoted strings)
)


@dataclass
class Theme:
    """One group of complaints: its key phrases, the post nearest its centre, and which posts it holds."""

    number: int
    key_phrases: list[str]
    example_id: int
    example: str
    post_ids: list[int] = field(default_factory=list)

    @property
    def size(self) -> int:
        """How many posts the theme holds."""
        return len(self.post_ids)


def center_by_language(vectors: np.ndarray, languages: list[str]) -> np.ndarray:
    """Return unit vectors with each language's mean taken out (the whole set's mean for a rare language)."""
    out = vectors.astype(np.float64, copy=True)
    langs = np.asarray(languages)
    overall = out.mean(axis=0) if len(out) else np.zeros(out.shape[1])
    for lang in set(languages):
        rows = langs == lang
        # Two posts of a language are not enough to say where that language sits.
        out[rows] -= out[rows].mean(axis=0) if rows.sum() >= 3 else overall
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms > 0, norms, 1.0)


def group_by_average_link(vectors: np.ndarray, *, joined_at: float = JOINED_AT) -> list[list[int]]:
    """Return groups of row indices: average-linkage agglomeration, merging while two groups' mean similarity
    is at least ``joined_at``.

    Each row keeps its best partner, so one merge costs a pass over the rows whose partner changed, not over
    the whole similarity matrix.
    """
    n = len(vectors)
    if n == 0:
        return []
    sim = vectors @ vectors.T
    np.fill_diagonal(sim, -np.inf)
    size = np.ones(n)
    active = np.ones(n, dtype=bool)
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    best = sim.argmax(axis=1)
    best_sim = sim[np.arange(n), best]
    while True:
        candidates = np.where(active, best_sim, -np.inf)
        i = int(candidates.argmax())
        if candidates[i] < joined_at:
            break
        j = int(best[i])
        # Average linkage (Lance–Williams): the merged group's similarity to each other group, size-weighted.
        merged = (sim[i] * size[i] + sim[j] * size[j]) / (size[i] + size[j])
        sim[i], sim[:, i] = merged, merged
        sim[i, i] = -np.inf
        sim[j], sim[:, j] = -np.inf, -np.inf
        size[i] += size[j]
        active[j] = False
        members[i].extend(members.pop(j))
        stale = active & ((best == i) | (best == j))
        stale[i] = True
        rows = np.flatnonzero(stale)
        best[rows] = sim[rows].argmax(axis=1)
        best_sim[rows] = sim[rows, best[rows]]
        closer = active & (sim[:, i] > best_sim)
        best[closer], best_sim[closer] = i, sim[closer, i]
    return [sorted(m) for m in members.values()]


def theme_groups(vectors: np.ndarray) -> list[list[int]]:
    """Return the groups big enough to be a theme, largest first; a post in none fits no theme."""
    smallest = max(MIN_THEME_POSTS, math.ceil(len(vectors) * MIN_THEME_SHARE))
    groups = [g for g in group_by_average_link(vectors) if len(g) >= smallest]
    return sorted(groups, key=lambda g: (-len(g), g[0]))


def tokens(text: str, leave_out: frozenset[str] = frozenset()) -> list[str]:
    """Return a post's words, lower-cased, without handles, links, stop words and the brand's own words."""
    words = [w.lower() for w in _TOKEN.findall(_NOT_WORDS.sub(" ", plain(text)))]
    return [w for w in words if w not in STOP_WORDS and w not in leave_out]


def _terms(words: list[str]) -> set[str]:
    """A post's terms: its words and its pairs of neighbouring words, each once per post."""
    return set(words) | {f"{a} {b}" for a, b in itertools.pairwise(words)}


def key_phrases(
    texts: list[str], labels: np.ndarray, *, top: int = KEY_PHRASES, leave_out: frozenset[str] = frozenset()
) -> dict[int, list[str]]:
    """Return each group's ``top`` terms by class-based TF-IDF (a term counts once per post)."""
    per_group: dict[int, Counter[str]] = {}
    for text, label in zip(texts, labels, strict=True):
        per_group.setdefault(int(label), Counter()).update(_terms(tokens(text, leave_out)))
    overall: Counter[str] = Counter()
    for counts in per_group.values():
        overall.update(counts)
    average = sum(sum(c.values()) for c in per_group.values()) / max(len(per_group), 1)
    out: dict[int, list[str]] = {}
    for label, counts in per_group.items():
        size = int(np.sum(labels == label))
        total = sum(counts.values()) or 1
        # Terms that two posts of the group share come first: a term of one post is that post's, not the theme's.
        floor = 2 if size >= 3 else 1
        ranked = sorted(
            ((n >= floor, n / total * math.log(1 + average / overall[term]), term) for term, n in counts.items()),
            key=lambda row: (not row[0], -row[1], row[2]),
        )
        chosen: list[str] = []
        for _, _, term in ranked:
            # "refund" beside "refund money" says the same twice.
            if any(term in other.split(" ") or other in term.split(" ") for other in chosen):
                continue
            chosen.append(term)
            if len(chosen) == top:
                break
        out[label] = chosen
    return out


def find_themes(posts: pd.DataFrame, vectors: np.ndarray, *, leave_out: frozenset[str] = frozenset()) -> list[Theme]:
    """Return the themes of ``posts`` (columns ``id``, ``text``, ``language``; rows align with ``vectors``).

    Largest theme first; each names its key phrases and its example, the post nearest the theme's centre. A post
    close to no group is in no theme.
    """
    if len(posts) < MIN_POSTS:
        return []
    languages = [str(v) for v in posts["language"]]
    centred = center_by_language(vectors, languages)
    groups = theme_groups(centred)
    labels = np.full(len(posts), -1)
    for number, rows in enumerate(groups):
        labels[rows] = number
    texts = [str(v) for v in posts["text"]]
    # The posts that fit no theme are a class of their own for the phrases: what they share is not a theme's.
    phrases = key_phrases(texts, labels, leave_out=leave_out)
    ids = [int(v) for v in posts["id"]]
    themes: list[Theme] = []
    for number, rows in enumerate(groups):
        centre = centred[rows].mean(axis=0)
        nearest = rows[int(np.argmax(centred[rows] @ centre))]
        themes.append(
            Theme(
                number=number + 1,
                key_phrases=phrases.get(number, []),
                example_id=ids[nearest],
                example=texts[nearest],
                post_ids=[ids[i] for i in rows],
            )
        )
    return themes


def weekly_movement(themes: list[Theme], created: pd.Series) -> pd.DataFrame:
    """Return posts per theme per week (weeks start on Monday, UTC) and the change from the week before.

    ``created`` maps a post id to its time. Every theme has a row for every week in the range, zeros included,
    so a theme that stops has a visible fall rather than a missing bar.
    """
    columns = ["week", "theme", "posts", "change"]
    if not themes or created.empty:
        return pd.DataFrame(columns=columns)
    days = pd.to_datetime(created, utc=True).dt.floor("D")
    weeks = days - pd.to_timedelta(days.dt.day_of_week, unit="D")
    all_weeks = pd.date_range(weeks.min(), weeks.max(), freq="7D")
    rows = []
    for theme in themes:
        counts = weeks[weeks.index.isin(theme.post_ids)].value_counts()
        previous: int | None = None
        for week in all_weeks:
            n = int(counts.get(week, 0))
            change = None if previous is None else n - previous
            rows.append({"week": week, "theme": theme.number, "posts": n, "change": change})
            previous = n
    return pd.DataFrame(rows, columns=columns)
