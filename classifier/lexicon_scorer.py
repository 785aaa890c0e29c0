"""LexiconScorer: a transparent bilingual baseline built from hand-written cue lists.

It is the scorer the desk runs before a trained model exists, and the yardstick that model
must beat. Every number it produces can be traced back to words in the post, and those words
are listed in the reasons.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from classifier import lexicon as lx
from classifier.base import PostFacts, PostScore
from classifier.language import detect_language
from classifier.urgency import urgency

MODEL_ID = "lexicon-baseline-0.1"
# Work is bounded per post: a 100k-character paste gets the same treatment as its opening.
MAX_CHARS = 5000

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060\ufeff]")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"@\w+")
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[!?¿¡.,;:]")
_SPACES = re.compile(r"\s+")
_SHOUT = re.compile(r"\b[A-ZÁÉÍÓÚÑ]{3,}\b")
_SCOPE_BREAKERS = frozenset(".,;:!?¿¡") | {"but", "pero", "aunque", "however", "sino"}
_NEGATION_SCOPE = 3  # words after a negator whose sentiment flips

# One alternation per lexicon, tried only at word starts: the lookarounds let the engine skip
# mid-word positions cheaply, which keeps the scorer above 5,000 posts/s.
_WORD_START = r"(?<![\w'])(?=[^\W_])"
_CUES = re.compile(
    _WORD_START + "(?:" + "|".join(f"(?P<c{i}>{pat})" for i, (pat, _, _) in enumerate(lx.COMPLAINT_CUES)) + ")"
)
_CUE_INFO = {f"c{i}": (weight, label) for i, (_, weight, label) in enumerate(lx.COMPLAINT_CUES)}
_CRISIS_NAMES = {f"k{i}": label for i, label in enumerate(lx.CRISIS)}
_CRISIS = re.compile(
    _WORD_START + "(?:" + "|".join(f"(?P<k{i}>{pat})" for i, pat in enumerate(lx.CRISIS.values())) + ")"
)


def _split_stems(table: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Separate exact words from "stem*" prefixes."""
    exact = {w: v for w, v in table.items() if not w.endswith("*")}
    stems = {w[:-1]: v for w, v in table.items() if w.endswith("*")}
    return exact, stems


_NEG_EXACT, _NEG_STEMS = _split_stems(lx.NEGATIVE)
_POS_EXACT, _POS_STEMS = _split_stems(lx.POSITIVE)
_ANGER_EXACT, _ANGER_STEMS = _split_stems({w: v for w, v in lx.ANGER.items() if " " not in w})


def _lookup(token: str, exact: dict[str, float], stems: dict[str, float]) -> float:
    """Weight of a token: exact entry first, then the longest matching stem."""
    weight = exact.get(token)
    if weight is not None:
        return weight
    for end in range(len(token), 2, -1):
        weight = stems.get(token[:end])
        if weight is not None:
            return weight
    return 0.0


# What the lexicons say about one folded token: (negative, positive, anger, is_negator, intensity).
# A plain tuple rather than a dataclass because this is read in the innermost loop.
_TokenInfo = tuple[float, float, float, bool, float]

_ALL_EMOJI = tuple(lx.EMOJI.items())
_ASCII_EMOTICONS = tuple((e, w) for e, w in _ALL_EMOJI if e.isascii())

_CACHE: dict[str, _TokenInfo] = {}
_CACHE_MAX = 200_000  # enough for a day's vocabulary; cleared, not grown, past it


def _info(token: str) -> _TokenInfo:
    """Look a token up once and remember the answer (tokens repeat heavily across posts)."""
    info = _CACHE.get(token)
    if info is None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        anger = _lookup(token, _ANGER_EXACT, _ANGER_STEMS)
        info = (
            max(_lookup(token, _NEG_EXACT, _NEG_STEMS), anger),
            _lookup(token, _POS_EXACT, _POS_STEMS),
            anger,
            token in lx.NEGATORS or token.endswith("n't"),
            lx.INTENSIFIERS.get(token, 1.0),
        )
        _CACHE[token] = info
    return info


@dataclass(slots=True)
class Evidence:
    """The cues found in one post, before they are turned into probabilities."""

    negative: float = 0.0
    positive: float = 0.0
    complaint: float = 0.0
    question: bool = False
    exclamations: int = 0
    tokens: int = 0
    anger: list[str] = field(default_factory=list)
    negated: list[str] = field(default_factory=list)
    cues: list[str] = field(default_factory=list)
    crisis: list[str] = field(default_factory=list)
    truncated_from: int = 0


def extract_evidence(text: str) -> Evidence:
    """Collect lexicon evidence from a post; never raises on odd input."""
    ev = Evidence()
    if len(text) > MAX_CHARS:
        ev.truncated_from = len(text)
        text = text[:MAX_CHARS]
    text = _CONTROL.sub(" ", text)

    # Pictographic emoji cannot occur in ASCII text, which is most posts: skip 20 scans there.
    emoji_table = _ASCII_EMOTICONS if text.isascii() else _ALL_EMOJI
    for emoji, (neg, pos) in emoji_table:
        count = text.count(emoji)
        if count:
            # Ten angry faces are not ten times as angry as one.
            damp = 1.0 + 0.3 * (min(count, 5) - 1)
            ev.negative += neg * damp
            ev.positive += pos * damp
            if emoji in lx.ANGRY_EMOJI:
                ev.anger.append(emoji)

    stripped = _HANDLE.sub(" ", _URL.sub(" ", text))
    # Shouting in capitals is anger in both languages; two shouted words to rule out acronyms.
    if len(_SHOUT.findall(stripped)) >= 2 and stripped.upper() == stripped:
        ev.anger.append("ALL CAPS")
    body = _SPACES.sub(" ", lx.fold(stripped).replace("#", " ")).strip()

    scope = 0
    boost = 1.0
    negative = positive = 0.0
    cache = _CACHE
    for word in _TOKEN.findall(body):
        if word in _SCOPE_BREAKERS:
            scope, boost = 0, 1.0
            if word in "?¿":
                ev.question = True
            elif word in "!¡":
                ev.exclamations += 1
            continue
        ev.tokens += 1
        info = cache.get(word) or _info(word)
        neg, pos, anger, negator, intensity = info
        if negator:
            scope = _NEGATION_SCOPE  # Spanish concord: "no ... nunca" extends, never cancels
            continue
        if intensity != 1.0:
            boost = intensity
            continue
        if neg or pos:
            neg, pos = neg * boost, pos * boost
            if scope:
                # "not happy" is nearly as negative as "unhappy"; "not bad" is only faintly positive.
                neg, pos = 0.9 * pos, 0.5 * neg
                ev.negated.append(word)
            elif anger:
                ev.anger.append(word)
            negative += neg
            positive += pos
            boost = 1.0
        if scope:
            scope -= 1
    ev.negative += negative
    ev.positive += positive

    for match in lx.ANGER_PHRASES.finditer(body):
        ev.anger.append(match.group(0))
        ev.negative += 2.0
    seen: set[str] = set()
    for match in _CUES.finditer(body):
        weight, label = _CUE_INFO[match.lastgroup or ""]
        if label not in seen:
            seen.add(label)
            ev.cues.append(label)
            ev.complaint += weight
    for match in _CRISIS.finditer(body):
        label = _CRISIS_NAMES[match.lastgroup or ""]
        if label == "mass outage" and not lx.OUTAGE_WORDS.search(body):
            continue
        if label not in ev.crisis:
            ev.crisis.append(label)
            ev.negative += 2.0  # threats, leaks and outages are bad news even in flat wording
    if not ev.question and lx.QUESTION_START.match(body):
        ev.question = True
    return ev


def _softmax(logits: tuple[float, float, float]) -> tuple[float, float, float]:
    """Numerically stable softmax over three logits."""
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    neg, neu, pos = (x / total for x in exps)
    return neg, neu, pos


def _sigmoid(x: float) -> float:
    """Logistic function, safe for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class LexiconScorer:
    """Bilingual (es/en) lexicon scorer implementing the `Scorer` protocol."""

    model_id: str = MODEL_ID

    def score(self, posts: list[PostFacts]) -> list[PostScore]:
        """Return one score per post, in order."""
        return [self.score_one(post) for post in posts]

    def score_one(self, post: PostFacts) -> PostScore:
        """Score a single post."""
        text = post.text if isinstance(post.text, str) else str(post.text or "")
        ev = extract_evidence(text)
        language = detect_language(text[:MAX_CHARS])

        # Long posts pile up evidence; scale it back so a rant is judged by density, not length.
        length_scale = min(1.0, math.sqrt(25.0 / ev.tokens)) if ev.tokens else 1.0
        cue = ev.complaint * length_scale
        negative = (ev.negative + 0.6 * ev.complaint) * length_scale
        positive = ev.positive * length_scale
        if negative > positive and ev.exclamations:
            negative *= 1.0 + 0.1 * min(ev.exclamations, 3)

        # Logits: each unit of evidence is worth ~1.1 nats; neutral wins when nothing is said.
        p_neg, p_neu, p_pos = _softmax((1.1 * negative, 0.6, 1.1 * positive))
        probabilities = {"negative": p_neg, "neutral": p_neu, "positive": p_pos}
        sentiment = max(probabilities, key=probabilities.__getitem__)

        z = -2.2 + 0.9 * cue + 0.45 * negative - 0.35 * positive + 0.4 * min(len(ev.anger), 3)
        if ev.question and (negative > 0 or cue > 0):
            z += 0.5  # a question about a problem is a complaint, a bare question is an enquiry
        if ev.crisis:
            z += 3.0
        complaint = _sigmoid(z)

        points, reasons = urgency(
            complaint,
            p_neg,
            anger=ev.anger,
            crisis=ev.crisis,
            is_dm=post.is_dm,
            followers=post.followers_count,
            waiting_s=post.waiting_s,
        )
        if ev.cues:
            reasons.append("cues: " + ", ".join(ev.cues))
        if ev.negated:
            reasons.append("negated: " + ", ".join(ev.negated[:5]))
        if ev.question:
            reasons.append("question")
        if ev.truncated_from:
            reasons.append(f"long text: scored the first {MAX_CHARS:,} of {ev.truncated_from:,} chars")
        needs_response = bool(
            post.is_dm or ev.crisis or ev.question or ev.cues or complaint >= 0.5 or sentiment == "negative"
        )
        return PostScore(
            sentiment=sentiment,
            probabilities=probabilities,
            complaint=complaint,
            urgency=points,
            language=language,
            model_id=self.model_id,
            reasons=reasons,
            needs_response=needs_response,
            crisis=bool(ev.crisis),
        )
