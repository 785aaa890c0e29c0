"""The scoring stage: score new posts in batches and decide which need an answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlmodel import Session, col

from classifier.base import PostFacts, PostScore, Scorer
from classifier.relevance import CHATTER_URGENCY, Relevance, judge
from ground.wake import wake
from models.customers import customer_boost, customer_signals
from models.tables import Author, Post, PostKind, PostStatus, Score, utcnow

# The brand's own page posts, our own replies and plain retweets are context, never work.
NEVER_WORK = frozenset({PostKind.PAGE_POST, PostKind.OWN, PostKind.SHARE})
# Posts addressed to the brand are answered unless a person dismisses them; the promise is that no public
# post to the brand goes unanswered. Keyword hits elsewhere need an answer only when the scorer says so.
ADDRESSED = frozenset({PostKind.MENTION, PostKind.COMMENT, PostKind.VISITOR_POST, PostKind.DM})
# Scorers look at a bounded prefix: a 100k-character post must not stall the batch.
MAX_TEXT_CHARS = 5000

# Called with the batch's scored posts (post, score, needs an answer) before the caller commits: the worker
# embeds them there for the knowledge lookup (knowledge/query_vectors.py), in the same transaction as the score.
AfterScoring = Callable[[Session, list[tuple[Post, PostScore, bool]]], object]


def _score_batch(scorer: Scorer, rows: list[tuple[Post, Author | None]]) -> list[PostScore]:
    """Score posts with what the scorer may know besides the text; one score per post, in order."""
    now = utcnow()
    facts = [
        PostFacts(
            text=post.text[:MAX_TEXT_CHARS],
            is_dm=post.kind == PostKind.DM,
            followers_count=author.followers_count if author else 0,
            waiting_s=max(0.0, (now - post.created_at).total_seconds()),
        )
        for post, author in rows
    ]
    scores = scorer.score(facts)
    if len(scores) != len(rows):
        raise RuntimeError(f"scorer {scorer.model_id} returned {len(scores)} scores for {len(rows)} posts")
    return scores


def relevance_of(post: Post, s: PostScore, terms: Sequence[str]) -> Relevance:
    """Whether a scored post is for the brand: addressed kinds always are; a keyword hit must show it."""
    return judge(
        post.text[:MAX_TEXT_CHARS],
        terms=terms,
        addressed=post.kind in ADDRESSED,
        crisis=s.crisis,
        complaint=s.complaint,
        cues=[r for r in s.reasons if r.startswith("cues: ")],
        question="question" in s.reasons,
        negative=s.probabilities.get("negative", 0.0),
    )


def _chatter(s: PostScore, relevance: Relevance) -> tuple[int, list[str]]:
    """A chatter post's urgency (held under every real lane) and its reasons, the "not about us" one first."""
    if relevance.for_brand:
        return s.urgency, list(s.reasons)
    return min(s.urgency, CHATTER_URGENCY), [relevance.reason_text, *s.reasons]


def score_pending(
    session: Session,
    scorer: Scorer,
    *,
    limit: int = 256,
    terms: Sequence[str] = (),
    after: AfterScoring | None = None,
) -> int:
    """Score up to ``limit`` new posts, oldest first; the caller commits. Returns how many left ``new``.

    The brand's own posts (``own``) leave ``new`` as ``no_action`` without a score: the model never reads them.
    A keyword hit that is chatter (``classifier/relevance.py``, judged against the brand ``terms``) needs no
    answer: it is stored ``no_action`` with a low urgency and the reason "not about us: …".
    """
    stmt = (
        select(Post, Author)
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(col(Post.status) == PostStatus.NEW)
        .order_by(col(Post.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # FOR NO KEY UPDATE: the batch changes no key, so a reply stored meanwhile may still point at one of its
        # posts (its foreign key check takes KEY SHARE), instead of waiting for the whole batch to be scored.
        stmt = stmt.with_for_update(skip_locked=True, of=Post, key_share=True)
    rows = session.execute(stmt).all()
    if not rows:
        return 0
    # Our own replies and DM acknowledgements come back through the listeners as context for the thread: they
    # are never work and their sentiment says nothing about the brand, so the model does not read them (they
    # were ~40 % of what a busy desk's classifier scored). They get no Score row.
    work = [(post, author) for post, author in rows if post.kind != PostKind.OWN]
    for post, _author in rows:
        if post.kind == PostKind.OWN:
            post.needs_response = False
            post.status = PostStatus.NO_ACTION
            session.add(post)
    scores = _score_batch(scorer, work) if work else []
    # Read before this batch changes any status: a customer's *other* open work and recent ratings.
    customers = customer_signals(session, [(p.id, p.author_id, p.conversation_id) for p, _ in work if p.id is not None])
    done: list[tuple[Post, PostScore, bool]] = []
    for (post, _author), s in zip(work, scores, strict=True):
        boost, why = customer_boost(customers.get(post.id or -1))
        relevance = relevance_of(post, s, terms)
        points, reasons = _chatter(s, relevance)
        session.add(
            Score(
                post_id=post.id,
                sentiment=s.sentiment,
                p_negative=s.probabilities.get("negative", 0.0),
                p_neutral=s.probabilities.get("neutral", 0.0),
                p_positive=s.probabilities.get("positive", 0.0),
                complaint=s.complaint,
                urgency=points,
                crisis=s.crisis,
                language=s.language,
                reasons=[*reasons, *why],
                model_id=s.model_id,
            )
        )
        needs = post.kind not in NEVER_WORK and (post.kind in ADDRESSED or s.needs_response or s.crisis)
        needs = needs and relevance.for_brand
        post.needs_response = needs
        # The model's urgency stays on the score; the queue ranks by the post's, which adds the customer's history.
        post.urgency = min(100, points + boost) if relevance.for_brand else points
        post.status = PostStatus.SCORED if needs else PostStatus.NO_ACTION
        session.add(post)
        done.append((post, s, needs))
        if needs:
            wake(session, "assign")  # the assignment sweep runs as soon as these scores are committed
    if after is not None and done:
        after(session, done)
    return len(rows)


# Posts still waiting for a person: a new model re-ranks them; answered or closed posts keep their history.
OPEN = frozenset({PostStatus.SCORED, PostStatus.ASSIGNED})


def rescore_open(session: Session, scorer: Scorer, *, limit: int = 256, terms: Sequence[str] = ()) -> int:
    """Re-score up to ``limit`` open posts whose score came from another model; the caller commits.

    Call it after the scorer changes (a new model id): the queue is re-ranked without touching status or
    assignment. Returns how many were re-scored (0 once every open post carries ``scorer.model_id``).
    """
    stmt = (
        select(Post, Author, Score)
        .join(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .where(col(Post.status).in_(list(OPEN)), col(Score.model_id) != scorer.model_id)
        .order_by(col(Post.id))
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=Post, key_share=True)  # as score_pending's
    rows = session.execute(stmt).all()
    if not rows:
        return 0
    scores = _score_batch(scorer, [(post, author) for post, author, _score in rows])
    customers = customer_signals(
        session, [(p.id, p.author_id, p.conversation_id) for p, _a, _s in rows if p.id is not None]
    )
    for (post, _author, row), s in zip(rows, scores, strict=True):
        boost, why = customer_boost(customers.get(post.id or -1))
        # An open post keeps its status; a keyword hit that turned out to be chatter sinks to the low lane.
        relevance = relevance_of(post, s, terms)
        points, reasons = _chatter(s, relevance)
        row.sentiment = s.sentiment
        row.p_negative = s.probabilities.get("negative", 0.0)
        row.p_neutral = s.probabilities.get("neutral", 0.0)
        row.p_positive = s.probabilities.get("positive", 0.0)
        row.complaint = s.complaint
        row.urgency = points
        row.crisis = s.crisis
        row.language = s.language
        row.reasons = [*reasons, *why]
        row.model_id = s.model_id
        row.scored_at = utcnow()
        post.urgency = min(100, points + boost) if relevance.for_brand else points
        session.add(row)
        session.add(post)
    return len(rows)
