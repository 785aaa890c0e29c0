"""The scorer interface every model implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

SENTIMENTS = ("negative", "neutral", "positive")


@dataclass(frozen=True, slots=True)
class PostFacts:
    """What the scorer may know about a post besides its text."""

    text: str
    is_dm: bool = False
    followers_count: int = 0
    waiting_s: float = 0.0


@dataclass(frozen=True, slots=True)
class PostScore:
    """One post's scores: sentiment probabilities, complaint, urgency 0–100 and the reasons."""

    sentiment: str
    probabilities: dict[str, float]
    complaint: float
    urgency: int
    language: str
    model_id: str
    reasons: list[str] = field(default_factory=list)
    needs_response: bool = True
    crisis: bool = False


class Scorer(Protocol):
    """Scores a batch of posts."""

    model_id: str

    def score(self, posts: list[PostFacts]) -> list[PostScore]:
        """Return one score per post, in order."""
        ...
