"""Keeping the knowledge base current: what staff did with each suggestion, and embeddings of newly sent answers.

Run by the worker after the care sweep (``worker.stages.knowledge_upkeep``: one worker at a time, the outcomes
committed before the embeddings). Outcomes are read from the replies themselves
(sent as suggested, sent edited, rejected or replaced, post dismissed), so no desk action needs a hook of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import exists, func, or_, select, update
from sqlmodel import Session, col

from knowledge.encoder import Encoder, default_encoder, model_id, to_bytes
from knowledge.query_vectors import stored
from knowledge.ranking import ACCEPTED, DISCARDED, EDITED
from knowledge.reuse import reusable_text
from models.knowledge import KbAnswer, KbArticle, KbSuggestion
from models.tables import Post, PostStatus, Reply, ReplyKind, ReplyState, Staff, utcnow

_GONE = (ReplyState.SENT, ReplyState.SENDING, ReplyState.APPROVED)
_CLOSED_POST = (PostStatus.DISMISSED, PostStatus.ESCALATED, PostStatus.NO_ACTION)
_PAGES = 10  # pages of answers one upkeep pass looks through for ones worth embedding


@dataclass(slots=True)
class UpkeepResult:
    """What one upkeep pass did."""

    settled: int = 0
    embedded: int = 0
    reembedded: int = 0


class _SentAnswer(Protocol):
    """What ``outcome_of`` reads of an answer reply (an ORM row or a selected row)."""

    state: str
    text: str
    suggested_text: str


def outcome_of(suggestion_text: str, reply: _SentAnswer | None, post_status: str) -> str | None:
    """What staff did with a suggestion, from the reply it went into; None while undecided."""
    snippet = suggestion_text[:60]
    if reply is None:
        return DISCARDED if post_status in _CLOSED_POST else None
    if reply.state in _GONE:
        if reply.text == reply.suggested_text:
            return ACCEPTED
        return EDITED if snippet in reply.text else DISCARDED
    if reply.state == ReplyState.REJECTED or post_status in _CLOSED_POST:
        return DISCARDED
    return None


def settle_outcomes(session: Session, *, now: datetime | None = None, limit: int = 500, rounds: int = 20) -> int:
    """Record the outcome of open suggestions whose reply was sent, rejected or dropped; return how many.

    Up to ``rounds`` pages of ``limit``: the worker runs the upkeep every half minute or so, and a busy desk
    settles more than one page in that time.
    """
    now = now or utcnow()
    settled, after = 0, 0
    for _ in range(max(1, rounds)):
        page, last = _settle_page(session, now=now, after=after, limit=limit)
        settled += page
        if last is None:
            break
        after = last
    return settled


def _settle_page(session: Session, *, now: datetime, after: int, limit: int) -> tuple[int, int | None]:
    """Settle one page of suggestions after id ``after``; (how many settled, the page's last id or None at the end)."""
    # Only suggestions something happened to: their post closed, or one of its answers left the draft states.
    # (Every open suggestion was read with two queries on every pass, twice a second under load, while most
    # still waited for a person.) Columns, not objects: a page is hundreds of rows and their replies.
    moved = exists().where(
        col(Reply.post_id) == col(KbSuggestion.post_id),
        col(Reply.kind) == ReplyKind.ANSWER,
        col(Reply.state).in_([*_GONE, ReplyState.REJECTED]),
    )
    open_rows = session.execute(
        select(col(KbSuggestion.id), col(KbSuggestion.post_id), col(KbSuggestion.text), col(Post.status))
        .join(Post, col(Post.id) == col(KbSuggestion.post_id))
        .where(
            col(KbSuggestion.outcome).is_(None),
            col(KbSuggestion.id) > after,
            or_(col(Post.status).in_(_CLOSED_POST), moved),
        )
        .order_by(col(KbSuggestion.id))
        .limit(limit)
    ).all()
    if not open_rows:
        return 0, None
    answers: dict[int, list[Any]] = {}
    for reply in session.execute(
        select(col(Reply.post_id), col(Reply.state), col(Reply.text), col(Reply.suggested_text))
        .where(col(Reply.post_id).in_({row.post_id for row in open_rows}), col(Reply.kind) == ReplyKind.ANSWER)
        .order_by(col(Reply.id).desc())
    ):
        answers.setdefault(reply.post_id, []).append(reply)
    by_outcome: dict[str, list[int]] = {}
    for row in open_rows:
        snippet = row.text[:60]
        replies = answers.get(row.post_id, [])
        used: Any = next((r for r in replies if snippet in r.suggested_text), None)
        outcome = outcome_of(row.text, used, row.status)
        if outcome is None and used is None and any(r.state in _GONE for r in replies):
            # The post's answer went out without this suggestion (its draft was made again, or replaced): left
            # undecided, the row matched every later pass and was read again each time, for ever.
            outcome = DISCARDED
        if outcome is not None:
            by_outcome.setdefault(outcome, []).append(row.id)
    for outcome, ids in by_outcome.items():
        session.execute(
            update(KbSuggestion)
            .where(col(KbSuggestion.id).in_(ids), col(KbSuggestion.outcome).is_(None))
            .values(outcome=outcome, outcome_at=now)
            .execution_options(synchronize_session=False)
        )
    last = int(open_rows[-1].id) if len(open_rows) == limit else None
    return sum(len(ids) for ids in by_outcome.values()), last


def embed_answers(session: Session, *, encoder: Encoder | None = None, limit: int = 64) -> int:
    """Embed the posts of answers sent with a person's approval that have no embedding yet; return how many."""
    query = (
        select(Reply, Post)
        .join(Post, col(Post.id) == col(Reply.post_id))
        .outerjoin(KbAnswer, col(KbAnswer.reply_id) == col(Reply.id))
        .where(
            col(Reply.kind) == ReplyKind.ANSWER,
            col(Reply.state) == ReplyState.SENT,
            col(Reply.approved_by_id).is_not(None),
            # Words a person wrote or changed: one sent as suggested is a saved reply or an article already
            # (knowledge/reuse.py says why it is never offered again).
            col(Reply.text) != col(Reply.suggested_text),
            col(KbAnswer.reply_id).is_(None),
            func.length(func.trim(col(Post.text))) > 0,
        )
        .order_by(col(Reply.id))
        .limit(limit)
    )
    names = {s.id: s.name for s in session.execute(select(Staff)).scalars()}
    rows: list[tuple[Reply, Post, str, str]] = []  # with who signed it and the words kept (knowledge/reuse.py)
    after = 0
    # Answers with nothing to reuse (an empty post, only a greeting) are passed over; never embedded, they would
    # otherwise fill the first page on every pass and keep every later answer out.
    for _ in range(_PAGES):
        page = session.execute(query.where(col(Reply.id) > after)).all()
        for reply, post in page:
            signer = _signer(names, reply)
            body = reusable_text(reply.text, signer=signer)
            if body:
                rows.append((reply, post, signer, body))
        if len(page) < limit or len(rows) >= limit:
            break
        after = int(page[-1][0].id)
    if not rows:
        return 0
    current = encoder.model_id if encoder is not None else model_id()
    # The vector made when the post was scored is the one to keep; only posts without one are embedded here.
    known = stored(session, [p.id for _, p, _, _ in rows if p.id is not None], current)
    missing = [p.text for _, p, _, _ in rows if (p.id or -1) not in known]
    fresh = iter((encoder or default_encoder()).queries(missing) if missing else [])
    vectors = [known[p.id] if p.id is not None and p.id in known else next(fresh) for _, p, _, _ in rows]
    for (reply, post, signer, body), vector in zip(rows, vectors, strict=True):
        assert reply.id is not None and post.id is not None
        session.add(
            KbAnswer(
                reply_id=reply.id,
                post_id=post.id,
                language=_language_of(session, post.id) or (post.lang or "")[:8],
                text=body,
                sent_by=signer,
                sent_at=reply.sent_at,
                embedding=to_bytes(vector),
                embedding_model=current,
            )
        )
    return len(rows)


def _signer(names: dict[int | None, str], reply: Reply) -> str:
    """Who sent ``reply`` under their name: its author, else its approver ('' when neither is known)."""
    return names.get(reply.author_staff_id) or names.get(reply.approved_by_id) or ""


def _language_of(session: Session, post_id: int) -> str:
    """The language the classifier gave the post ('' when unscored)."""
    from models.tables import Score

    score = session.execute(select(col(Score.language)).where(col(Score.post_id) == post_id)).scalar_one_or_none()
    return (score or "")[:8]


def reembed_stale(session: Session, *, encoder: Encoder | None = None, limit: int = 64) -> int:
    """Embed again the articles and past answers stored by another encoder (an upgrade); return how many.

    Why: the index reads only vectors of the process's own encoder, so rows left under an older one would silently
    drop out of the suggestions; a changed model id (new weights, another backend) re-embeds them bit by bit here.
    """
    from knowledge.articles import embed_article

    current = encoder.model_id if encoder is not None else model_id()
    stale_articles = list(
        session.execute(
            select(KbArticle)
            .where(col(KbArticle.embedding_model).is_distinct_from(current))
            .order_by(col(KbArticle.id))
            .limit(limit)
        ).scalars()
    )
    stale_answers = session.execute(
        select(KbAnswer, Post)
        .join(Post, col(Post.id) == col(KbAnswer.post_id))
        .where(col(KbAnswer.embedding_model) != current)
        .order_by(col(KbAnswer.reply_id))
        .limit(limit)
    ).all()
    if not stale_articles and not stale_answers:
        return 0
    encoder = encoder or default_encoder()
    for article in stale_articles:
        questions = [q for q in article.questions.splitlines() if q.strip()]
        article.embedding = to_bytes(embed_article(article.title, questions, article.body, encoder))
        article.embedding_model = encoder.model_id
        session.add(article)
    if stale_answers:
        vectors = encoder.queries([post.text for _, post in stale_answers])
        for (answer, _), vector in zip(stale_answers, vectors, strict=True):
            answer.embedding = to_bytes(vector)
            answer.embedding_model = encoder.model_id
            session.add(answer)
    return len(stale_articles) + len(stale_answers)
