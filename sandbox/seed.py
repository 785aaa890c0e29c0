"""Seed the sandbox with real-world texts (complaints corpus, TASS Spanish tweets) spread over every channel."""

from __future__ import annotations

import csv
import random
import re
from datetime import timedelta
from itertools import zip_longest
from pathlib import Path

from sandbox.server import Sandbox

# Shipped with the repo: texts written for this project and XLM-T training tweets (Apache-2.0, see
# SEED_NOTICE.md), so a fresh clone's demo and tests have real-world posts with nothing beside the checkout.
SEED_FILE = Path(__file__).resolve().parent / "seed_texts.tsv"

PAGE_POSTS = ["¡Nueva colección disponible en tiendas y online!", "Horario especial de atención este fin de semana."]
IG_MEDIA = ["Así queda la nueva colección ✨", "¡Abrimos tienda nueva en el centro!"]
# Instagram's share of a seed when it is switched on: comments under the account's media, DMs, tagged media.
IG_CHANNELS = {"ig_comment": 12, "ig_dm": 8, "ig_mention": 5}
SPREAD_MAX = timedelta(hours=6)
PER_TEXT = timedelta(minutes=5)
_PEOPLE_ES = ["lucia_mr", "pepe_garcia", "marta.ruiz", "javi_88", "ana_lopez", "carlos_mx", "sofia_uy"]
_PEOPLE_EN = ["jen_smith", "mike_b", "sarah_k", "tom_h", "linda_w", "dave_r", "emma_j"]
_LEADING_HANDLES = re.compile(r"^(\s*@\w+[:,]?\s*)+")


def _read_tsv(path: Path, text_column: str) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        return [str(row[text_column]).strip() for row in rows if row.get(text_column)]


def _spread(texts: list[str], count: int) -> list[str]:
    # Evenly spaced rows rather than the head: the files are grouped by label/domain.
    if count <= 0 or not texts:
        return []
    step = max(1, len(texts) // count)
    return texts[::step][:count]


def bundled_seed_texts() -> list[tuple[str, str]]:
    """The (lang, text) pairs shipped in ``seed_texts.tsv``, Spanish first."""
    with SEED_FILE.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        return [(row["lang"], row["text"]) for row in rows if row.get("text")]


def load_seed_texts(limit: int, data_dir: Path | None = None) -> list[tuple[str, str]]:
    """Return up to ``limit`` (lang, text) pairs: the shipped texts, or brand-directed corpora from ``data_dir``.

    With a ``data_dir`` holding ``complaints/complaints_train.tsv`` and ``sentiment/tass2020_es_train.tsv`` (read
    in place: those corpora may not be copied into the repository), half are English complaints to brands and
    half Spanish TASS tweets; otherwise the shipped texts are spread evenly over both languages.
    """
    complaints = data_dir / "complaints" / "complaints_train.tsv" if data_dir else None
    tass = data_dir / "sentiment" / "tass2020_es_train.tsv" if data_dir else None
    if complaints is None or tass is None or not complaints.is_file() or not tass.is_file():
        bundled = bundled_seed_texts()
        # One Spanish, one English, Spanish first: our users read Spanish first.
        both = zip_longest([p for p in bundled if p[0] == "es"], [p for p in bundled if p[0] == "en"])
        return [pair for group in both for pair in group if pair is not None][:limit]
    english = _spread(_read_tsv(complaints, "text"), limit // 2)
    spanish = _spread(_read_tsv(tass, "text"), limit - len(english))
    pairs = [("es", t) for t in spanish] + [("en", t) for t in english]
    return [(lang, text) for lang, text in pairs if text][:limit]


def _strip_handles(text: str) -> str:
    return _LEADING_HANDLES.sub("", text).strip() or text


def seed_sandbox(
    sandbox: Sandbox, texts: list[tuple[str, str]], rng: random.Random, *, instagram: bool = False
) -> dict[str, int]:
    """Spread ``texts`` over X mentions, DMs and search hits, Facebook comments, visitor posts and
    Messenger (and, with ``instagram``, Instagram comments, DMs and tagged media), oldest first and ending
    now; return how many went to each channel.

    A backlog is spread over up to six hours (five minutes per text); a single text (a live drip) is
    posted now. The page's own posts to comment on are created once and reused.
    """
    channels = ["mention", "dm", "search", "comment", "visitor_post", "message"]
    weights = [35, 15, 10, 20, 10, 10]
    if instagram:
        channels, weights = [*channels, *IG_CHANNELS], [*weights, *IG_CHANNELS.values()]
    counts = dict.fromkeys(channels, 0)
    spread = min(SPREAD_MAX, PER_TEXT * max(0, len(texts) - 1))
    start = sandbox.now() - spread
    page_posts = sandbox.page_post_ids() or [
        sandbox.add_fb_post(text, at=start - timedelta(minutes=10 - i)) for i, text in enumerate(PAGE_POSTS)
    ]
    ig_media = (sandbox.ig_media_ids() or [
        sandbox.add_ig_media(text, at=start - timedelta(minutes=10 - i)) for i, text in enumerate(IG_MEDIA)
    ]) if instagram else []  # fmt: skip
    for i, (lang, raw) in enumerate(texts):
        at = start + spread * (i / max(1, len(texts) - 1))
        text = _strip_handles(raw)
        author = rng.choice(_PEOPLE_ES if lang == "es" else _PEOPLE_EN) + str(rng.randint(1, 99))
        followers = int(rng.lognormvariate(5, 2))  # most accounts are small, a few are very large
        channel = rng.choices(channels, weights)[0]
        if channel == "mention":
            sandbox.add_mention(text, author=author, lang=lang, followers=followers, at=at)
        elif channel == "dm":
            sandbox.add_dm(text, author=author, followers=followers, at=at, lang=lang)
        elif channel == "search":
            sandbox.add_search_hit(f"{sandbox.page_name} {text}", author=author, lang=lang, followers=followers, at=at)
        elif channel == "comment":
            sandbox.add_fb_comment(rng.choice(page_posts), text, author=author.title(), at=at, lang=lang)
        elif channel == "visitor_post":
            sandbox.add_fb_post(text, author=author.title(), at=at, lang=lang)
        elif channel == "ig_comment":
            sandbox.add_ig_comment(rng.choice(ig_media), text, author=author.lower(), at=at, lang=lang)
        elif channel == "ig_dm":
            sandbox.add_ig_message(text, author=author.lower(), at=at, lang=lang)
        elif channel == "ig_mention":
            sandbox.add_ig_media(f"{text} @{sandbox.ig_username}", author=author.lower(), at=at)
        else:
            sandbox.add_fb_message(text, author=author.title(), at=at, lang=lang)
        counts[channel] += 1
    return counts


# People who write on both networks, several times, naming one order on each: the customer page and its link
# suggestions have something to show. (X shows "carlos_ruiz" as "Carlos Ruiz", the name Facebook has for him.)
CROSS_CHANNEL: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("carlos_ruiz", "Carlos Ruiz", [
        ("mention", "mi pedido #5521 no ha llegado y ya pasó una semana"),
        ("dm", "Hola, os escribo por privado por el pedido 5521: ¿me decís algo?"),
        ("dm", "¿Alguna novedad del pedido #5521? Necesito una fecha"),
        ("comment", "Llevo una semana esperando el pedido #5521 y en Twitter nadie me responde"),
    ]),
    ("jen_smith", "Jen Smith", [
        ("mention", "order #7730 was charged twice, please refund one of them"),
        ("message", "Hi, following up on order #7730 from Twitter: I was charged twice"),
        ("message", "Any update? It's been two days"),
    ]),
    ("marta_gb", "Marta García", [
        ("dm", "mi pedido 8812 llegó roto, ¿cómo lo devuelvo?"),
        ("visitor_post", "Pedido #8812 roto. Quiero la devolución."),
    ]),
]  # fmt: skip


def seed_cross_channel(sandbox: Sandbox) -> int:
    """Add the people of ``CROSS_CHANNEL`` on X and Facebook over the last hour; return how many messages."""
    page_posts = sandbox.page_post_ids() or [sandbox.add_fb_post(PAGE_POSTS[0])]
    messages = [(handle, name, kind, text) for handle, name, said in CROSS_CHANNEL for kind, text in said]
    start = sandbox.now() - timedelta(hours=1)
    for i, (handle, name, kind, text) in enumerate(messages):
        at = start + timedelta(minutes=5 * i)
        lang = "en" if handle == "jen_smith" else "es"
        if kind == "mention":
            sandbox.add_mention(text, author=handle, lang=lang, at=at)
        elif kind == "dm":
            sandbox.add_dm(text, author=handle, at=at, lang=lang)
        elif kind == "comment":
            sandbox.add_fb_comment(page_posts[0], text, author=name, at=at, lang=lang)
        elif kind == "visitor_post":
            sandbox.add_fb_post(text, author=name, at=at, lang=lang)
        else:
            sandbox.add_fb_message(text, author=name, at=at, lang=lang)
    return len(messages)
