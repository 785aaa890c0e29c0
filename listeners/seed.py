"""Seed the sandbox with real-world texts (complaints corpus, TASS Spanish tweets) spread over every channel."""

from __future__ import annotations

import csv
import random
import re
from datetime import timedelta
from pathlib import Path

from listeners.sandbox import Sandbox

# Used when ../shared/data is missing (e.g. a fresh clone): short, written for this project.
FALLBACK_TEXTS: list[tuple[str, str]] = [
    ("es", "Llevo tres días sin internet y nadie me da una solución. Pésimo servicio."),
    ("es", "¿A qué hora abren las tiendas el domingo?"),
    ("es", "Me cobraron dos veces la misma factura, necesito el reembolso ya"),
    ("es", "Gracias por resolver lo de mi pedido tan rápido, ¡un diez!"),
    ("es", "El pedido 4471 sigue sin llegar y el seguimiento no se actualiza desde el lunes"),
    ("es", "¿Cómo cambio la dirección de envío de un pedido ya pagado?"),
    ("es", "La app se cierra sola cada vez que intento pagar. Ya la reinstalé."),
    ("es", "Excelente atención en la tienda del centro, muy amables."),
    ("es", "No puedo entrar a mi cuenta, dice contraseña incorrecta pero la acabo de cambiar"),
    ("es", "¿Tienen la talla M en azul? En la web sale agotado"),
    ("es", "Es la tercera vez que llamo y me cuelgan. Voy a poner una reclamación formal."),
    ("es", "Todo perfecto con la devolución, gracias"),
    ("es", "¿Hacen envíos a Canarias? ¿Cuánto cuesta?"),
    ("es", "El producto llegó roto y la caja mojada. Quiero una solución hoy."),
    ("es", "Me encanta el nuevo diseño, mucho más fácil de usar"),
    ("en", "My order has been stuck in processing for a week, what is going on?"),
    ("en", "Charged twice for the same subscription. Please refund me."),
    ("en", "Do you ship to Canada?"),
    ("en", "Great service at the downtown store today, thanks!"),
    ("en", "The app keeps crashing at checkout. Fix it please."),
    ("en", "How do I reset my password? The email never arrives."),
    ("en", "Still no reply to my ticket after 5 days. Terrible."),
    ("en", "Love the new collection!"),
    ("en", "Package arrived damaged, who do I contact?"),
    ("en", "Is the black model back in stock anytime soon?"),
    ("en", "Your outage has cost me a full day of work. Unacceptable."),
    ("en", "Thanks for sorting out my refund so quickly"),
    ("en", "Can I change the delivery date for my order?"),
    ("en", "Website says my coupon is invalid but it expires next month"),
    ("en", "Customer support fixed my issue in five minutes, impressed"),
]

PAGE_POSTS = ["¡Nueva colección disponible en tiendas y online!", "Horario especial de atención este fin de semana."]
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


def load_seed_texts(shared_data_dir: Path, limit: int) -> list[tuple[str, str]]:
    """Return up to ``limit`` (lang, text) pairs, half English complaints and half Spanish TASS tweets.

    Reads ``complaints/complaints_train.tsv`` and ``sentiment/tass2020_es_train.tsv`` in place (the
    corpora must not be copied into the repository); falls back to built-in texts when they are missing.
    """
    complaints = shared_data_dir / "complaints" / "complaints_train.tsv"
    tass = shared_data_dir / "sentiment" / "tass2020_es_train.tsv"
    if not complaints.is_file() or not tass.is_file():
        return FALLBACK_TEXTS[:limit]
    english = _spread(_read_tsv(complaints, "text"), limit // 2)
    spanish = _spread(_read_tsv(tass, "text"), limit - len(english))
    pairs = [("es", t) for t in spanish] + [("en", t) for t in english]
    return [(lang, text) for lang, text in pairs if text][:limit]


def _strip_handles(text: str) -> str:
    return _LEADING_HANDLES.sub("", text).strip() or text


def seed_sandbox(sandbox: Sandbox, texts: list[tuple[str, str]], rng: random.Random) -> dict[str, int]:
    """Spread ``texts`` over X mentions, DMs and search hits and Facebook comments, visitor posts and
    Messenger, oldest first and ending now; return how many went to each channel.

    A backlog is spread over up to six hours (five minutes per text); a single text (a live drip) is
    posted now. The page's own posts to comment on are created once and reused.
    """
    channels = ["mention", "dm", "search", "comment", "visitor_post", "message"]
    weights = [35, 15, 10, 20, 10, 10]
    counts = dict.fromkeys(channels, 0)
    spread = min(SPREAD_MAX, PER_TEXT * max(0, len(texts) - 1))
    start = sandbox.now() - spread
    page_posts = sandbox.page_post_ids() or [
        sandbox.add_fb_post(text, at=start - timedelta(minutes=10 - i)) for i, text in enumerate(PAGE_POSTS)
    ]
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
        else:
            sandbox.add_fb_message(text, author=author.title(), at=at, lang=lang)
        counts[channel] += 1
    return counts
