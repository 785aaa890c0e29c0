"""Urgency 0-100 from a post's scores and facts, with the reasons an agent will read.

Kept apart from any model so that the transformer scorer can reuse it unchanged and so
that the weights below are the one place to argue about triage policy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

# Points per signal. The complaint probability ("needs a response") carries the content score;
# negativity and anger words add to it in proportion to that probability, because a furious post
# about a football match needs nothing from the brand while a furious customer goes first. (Added
# ungated, negativity lowered the held-out complaints ROC-AUC of urgency from 0.91 to 0.89.) The facts
# about the post (DM, reach, waiting) then order posts of similar content.
_COMPLAINT_POINTS = 50.0
_NEGATIVE_POINTS = 20.0
_ANGER_POINTS_EACH = 5.0
_ANGER_POINTS_MAX = 12.0
_CRISIS_FLOOR = 80.0  # a crisis post goes to the top of the queue whatever else it says
_DM_POINTS = 10.0
_REACH_FROM = 500  # below this the author's audience changes nothing
_REACH_POINTS_PER_DECADE = 5.0
_REACH_POINTS_MAX = 15.0
_WAIT_POINTS_PER_DOUBLING = 5.0
_WAIT_POINTS_MAX = 20.0


def _finite(x: float, default: float = 0.0) -> float:
    """Replace NaN (from a broken upstream model or a bad timestamp) with a default."""
    return default if x != x else x


def format_count(n: int) -> str:
    """Write a follower count the way people say it: 950, 38k, 1.2M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M".replace(".0M", "M")
    if n >= 10_000:
        return f"{n // 1000}k"
    if n >= 1000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return str(n)


def urgency(
    complaint: float,
    negative: float,
    *,
    anger: Sequence[str] = (),
    crisis: Sequence[str] = (),
    is_dm: bool = False,
    followers: int = 0,
    waiting_s: float = 0.0,
) -> tuple[int, list[str]]:
    """Return urgency 0-100 and its reasons; non-decreasing in every input."""
    complaint = min(1.0, max(0.0, _finite(complaint)))
    negative = min(1.0, max(0.0, _finite(negative)))
    followers = max(0, int(followers))
    waiting_s = max(0.0, _finite(waiting_s))
    reasons: list[str] = []

    score = _COMPLAINT_POINTS * complaint + _NEGATIVE_POINTS * negative * complaint
    if complaint >= 0.5:
        reasons.append(f"complaint {complaint:.2f}")
    if negative >= 0.5:
        reasons.append(f"negative {negative:.2f}")
    if anger:
        score += min(_ANGER_POINTS_MAX, _ANGER_POINTS_EACH * len(anger)) * complaint
        reasons.append("anger words: " + ", ".join(anger[:5]))
    if crisis:
        # Added rather than replaced, so the other signals still order crisis posts among themselves.
        score = max(score + 40.0, _CRISIS_FLOOR)
        reasons.extend(f"crisis: {label}" for label in crisis)
    if is_dm:
        score += _DM_POINTS
        reasons.append("DM")
    if followers > _REACH_FROM:
        score += min(_REACH_POINTS_MAX, _REACH_POINTS_PER_DECADE * math.log10(followers / _REACH_FROM))
        if followers >= 1000:
            reasons.append(f"author reach {format_count(followers)}")
    if waiting_s > 0:
        hours = waiting_s / 3600.0
        score += min(_WAIT_POINTS_MAX, _WAIT_POINTS_PER_DOUBLING * math.log2(1.0 + hours))
        if hours >= 1.0:
            reasons.append(f"waiting {min(hours, 9999.0):.1f} h")
        elif waiting_s >= 300:
            reasons.append(f"waiting {waiting_s / 60:.0f} min")
    return round(min(100.0, max(0.0, score))), reasons
