"""The queries behind the review desk: filtering, counting and paging are done in SQL, never over every row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select
from sqlmodel import Session, col

from ground.clock import aware_or_none
from models.store import clean_text
from models.tables import Author, Post, PostKind, PostStatus, Reply, ReplyKind, ReplyState, Score, Staff, utcnow
from responder.sla_targets import due_at, sla_seconds

# The states in which a post waits for someone at the desk (NEW posts are not scored yet).
QUEUE_STATUSES: tuple[str, ...] = (PostStatus.SCORED, PostStatus.ASSIGNED)
DEFAULT_PAGE_SIZE = 25
UNASSIGNED = -1  # ``QueueFilters.assignee_id`` value that asks for posts nobody owns
# ``QueueFilters.answer``: cards with a person's submitted answer, with only a machine suggestion, or with neither.
ANSWER_SUBMITTED = "submitted"
ANSWER_SUGGESTED = "suggested"
ANSWER_NONE = "none"
ANSWER_CHOICES = (ANSWER_SUBMITTED, ANSWER_SUGGESTED, ANSWER_NONE)


@dataclass(frozen=True, slots=True)
class QueueFilters:
    """What the queue is narrowed to; an empty tuple means no restriction."""

    networks: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    sentiments: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    assignee_id: int | None = None  # a staff id, UNASSIGNED, or None for everyone
    post_id: int | None = None  # one post only (a link to it: ``/queue?post=12``)
    # An agent's staff id: direct messages given to someone else are left out. A private thread is for its owner
    # (responder/conversations.may_view); managers and admins leave this unset and see every DM.
    dms_of: int | None = None
    crisis_only: bool = False  # the crisis lane: posts the classifier flagged as a crisis
    answer: str | None = None  # one of ANSWER_CHOICES, or None for every card


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One open post as the queue shows it, with its score, author, owner, thread parent and reply."""

    post_id: int
    network: str
    kind: str
    status: str
    text: str
    url: str | None
    manual_only: bool
    created_at: datetime
    due_at: datetime
    urgency: int | None
    author_username: str
    author_display_name: str
    author_followers: int
    author_verified: bool
    sentiment: str | None
    p_negative: float | None
    p_neutral: float | None
    p_positive: float | None
    crisis: bool
    language: str | None
    reasons: list[str]
    assignee_id: int | None
    assignee_name: str | None
    parent_text: str | None
    reply_id: int | None
    reply_state: str | None
    reply_text: str | None
    reply_note: str | None
    author_id: int | None = None
    author_earlier_posts: int = 0
    author_answered: int = 0
    conversation_id: int | None = None
    waiting: int = 1  # the conversation's messages waiting for us (this one included)
    # What the customer was promised (issue 15): by when, on what basis, and the pending reply's own promise.
    promised_at: datetime | None = None
    promise_basis: dict[str, Any] | None = None
    reply_promised_at: datetime | None = None
    updates_stopped: bool = False
    # Who submitted the current answer (a person's, not a machine suggestion), when someone did.
    submitted_by_name: str | None = None


@dataclass(frozen=True, slots=True)
class QueuePage:
    """One page of the queue and the total that matches the filters."""

    items: list[QueueItem]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """Return how many pages the matching posts fill (at least one)."""
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True, slots=True)
class FilterOptions:
    """The values the filters can take, drawn from the open posts."""

    networks: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    sentiments: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class HourCount:
    """How many posts of one sentiment arrived in one hour (UTC)."""

    hour: datetime
    sentiment: str
    count: int


def _matchable(values: tuple[str, ...]) -> list[str]:
    # A value the store could never have written (NUL, a lone surrogate) matches nothing; sent to
    # PostgreSQL it would fail the whole query instead.
    return [v for v in values if isinstance(v, str) and clean_text(v) == v]


def _open_where(filters: QueueFilters) -> list[Any]:
    """Return the WHERE clauses of the queue for ``filters`` (Score columns need the Score join)."""
    statuses = [s for s in filters.statuses if s in QUEUE_STATUSES] or list(QUEUE_STATUSES)
    where: list[Any] = [col(Post.needs_response).is_(True), col(Post.status).in_(statuses)]
    if filters.networks:
        where.append(col(Post.network).in_(_matchable(filters.networks)))
    if filters.kinds:
        where.append(col(Post.kind).in_(_matchable(filters.kinds)))
    if filters.languages:
        where.append(col(Score.language).in_(_matchable(filters.languages)))
    if filters.sentiments:
        where.append(col(Score.sentiment).in_(_matchable(filters.sentiments)))
    if filters.post_id is not None:
        where.append(col(Post.id) == filters.post_id)
    if filters.assignee_id == UNASSIGNED:
        where.append(col(Post.assignee_id).is_(None))
    elif filters.assignee_id is not None:
        where.append(col(Post.assignee_id) == filters.assignee_id)
    if filters.crisis_only:
        where.append(col(Score.crisis).is_(True))
    if filters.answer in ANSWER_CHOICES:
        where.append(_answer_clause(filters.answer))
    if filters.dms_of is not None:
        where.append(
            or_(
                col(Post.kind) != PostKind.DM,
                col(Post.assignee_id).is_(None),
                col(Post.assignee_id) == filters.dms_of,
            )
        )
    return where


def _answer_clause(answer: str | None) -> Any:
    """Cards whose post has a submitted answer, only a machine suggestion, or neither (the three do not overlap)."""
    answers = select(col(Reply.id)).where(col(Reply.post_id) == col(Post.id), col(Reply.kind) == ReplyKind.ANSWER)
    submitted = answers.where(col(Reply.submitted_by_id).is_not(None)).exists()
    suggested = answers.where(col(Reply.state) == ReplyState.SUGGESTED).exists()
    if answer == ANSWER_SUBMITTED:
        return submitted
    if answer == ANSWER_SUGGESTED:
        return and_(~submitted, suggested)
    return and_(~submitted, ~suggested)


_SelectT = TypeVar("_SelectT", bound=Select)


def _with_score(stmt: _SelectT, filters: QueueFilters) -> _SelectT:
    # An outer join keeps a post whose score row is missing visible; it is still open work.
    return stmt.outerjoin(Score, col(Score.post_id) == col(Post.id)).where(*_open_where(filters))


def _work_unit() -> Any:
    """What one card stands for: the post's conversation, or the post alone when it has none."""
    return func.coalesce(col(Post.conversation_ref), -col(Post.id))


def count_queue(session: Session, *, filters: QueueFilters) -> int:
    """Return how many conversations (one card each) have open posts matching ``filters``."""
    stmt = _with_score(select(func.count(func.distinct(_work_unit()))).select_from(Post), filters)
    return int(session.execute(stmt).scalar_one())


def _cards(filters: QueueFilters, *, oldest_due_first: bool, offset: int, limit: int) -> Any:
    """One page of cards, one per conversation: its last stored waiting message stands for it, ranked by its
    most urgent one (or its earliest due one).

    A GROUP BY (hashed) rather than a window over every open post, and the page is cut inside it, so only the
    page's rows are joined to their posts, authors and scores.
    """
    unit = _work_unit()
    grouped = _with_score(
        select(
            func.max(col(Post.id)).label("post_id"),
            func.max(col(Post.urgency)).label("urgency"),
            func.min(col(Post.due_at)).label("due_at"),
            func.min(col(Post.created_at)).label("first_at"),
            func.count().label("waiting"),
        ).select_from(Post),
        filters,
    ).group_by(unit)
    ranked = grouped.subquery("groups")
    return select(ranked).order_by(*_order(ranked, oldest_due_first)).offset(offset).limit(limit).subquery("cards")


def fetch_queue(
    session: Session,
    *,
    filters: QueueFilters,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    oldest_due_first: bool = False,
) -> QueuePage:
    """Return one page of open posts, most urgent first (or oldest due first), then longest waiting."""
    total = count_queue(session, filters=filters)
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    parent = aliased(Post)
    cards = _cards(filters, oldest_due_first=oldest_due_first, offset=(page - 1) * page_size, limit=page_size)
    stmt = (
        select(Post, Score, Author, Staff, col(parent.text), cards.c.waiting)
        .select_from(cards)
        .join(Post, col(Post.id) == cards.c.post_id)
        .outerjoin(Score, col(Score.post_id) == col(Post.id))
        .outerjoin(Author, col(Author.id) == col(Post.author_id))
        .outerjoin(Staff, col(Staff.id) == col(Post.assignee_id))
        .outerjoin(parent, col(parent.id) == col(Post.parent_id))
        .order_by(*_order(cards, oldest_due_first))
    )
    rows = session.execute(stmt).all()
    post_ids = [row[0].id for row in rows]
    replies = _current_replies(session, post_ids=post_ids)
    parents = _parents_by_external_id(session, posts=[row[0] for row in rows if row[4] is None])
    history = _author_history(session, author_ids=[row[0].author_id for row in rows if row[0].author_id])
    submitters = _names(session, {r.submitted_by_id for r in replies.values() if r.submitted_by_id is not None})
    items = [
        replace(
            _item(post, score, author, staff, parent_text or parents.get(post.id), replies.get(post.id), history),
            conversation_id=post.conversation_ref,
            waiting=int(waiting),
            submitted_by_name=_submitter(replies.get(post.id), submitters),
        )
        for post, score, author, staff, parent_text, waiting in rows
    ]
    return QueuePage(items=items, total=total, page=page, page_size=page_size)


def _names(session: Session, staff_ids: set[int]) -> dict[int, str]:
    """The names of a few staff members (one query for the page)."""
    if not staff_ids:
        return {}
    rows = session.execute(select(col(Staff.id), col(Staff.name)).where(col(Staff.id).in_(staff_ids))).all()
    return {int(i): str(n) for i, n in rows}


def _submitter(reply: Reply | None, names: dict[int, str]) -> str | None:
    """Who submitted a card's answer; a machine suggestion nobody touched has no one."""
    if reply is None or reply.kind != ReplyKind.ANSWER or reply.submitted_by_id is None:
        return None
    return names.get(reply.submitted_by_id)


def open_post_ids(session: Session, *, filters: QueueFilters, limit: int) -> list[int]:
    """The open posts behind the queue's cards for ``filters`` (one per card, queue order), ``limit`` at most."""
    cards = _cards(filters, oldest_due_first=False, offset=0, limit=limit)
    return [int(i) for i in session.execute(select(cards.c.post_id).order_by(*_order(cards, False))).scalars()]


def _order(cards: Any, oldest_due_first: bool) -> list[Any]:
    # Posts the classifier has not ranked (or not yet timed) sink to the bottom on every backend. A conversation
    # ranks by its most urgent waiting message and waits since its oldest one.
    if oldest_due_first:
        return [cards.c.due_at.is_(None), cards.c.due_at.asc(), cards.c.first_at.asc(), cards.c.post_id.asc()]
    return [cards.c.urgency.is_(None), cards.c.urgency.desc(), cards.c.first_at.asc(), cards.c.post_id.asc()]


def _author_history(session: Session, *, author_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Return, per author, how many posts we have from them and how many we answered (one query per page)."""
    if not author_ids:
        return {}
    answered = func.sum(case((col(Post.status) == PostStatus.REPLIED, 1), else_=0))
    stmt = (
        select(col(Post.author_id), func.count(), answered)
        .where(col(Post.author_id).in_(set(author_ids)))
        .group_by(col(Post.author_id))
    )
    return {int(a): (int(n), int(r or 0)) for a, n, r in session.execute(stmt).all()}


def _current_replies(session: Session, *, post_ids: Sequence[int]) -> dict[int, Reply]:
    """Return each post's current reply: its newest answer, else its newest reply (one query for the page).

    The answer wins over the automatic messages: a DM whose acknowledgement went out still shows its answer
    to write and approve, not the sent acknowledgement.
    """
    if not post_ids:
        return {}
    found: dict[int, Reply] = {}
    stmt = select(Reply).where(col(Reply.post_id).in_(post_ids)).order_by(col(Reply.id).asc())
    for reply in session.execute(stmt).scalars():
        current = found.get(reply.post_id)
        if current is None or reply.kind == ReplyKind.ANSWER or current.kind != ReplyKind.ANSWER:
            found[reply.post_id] = reply
    return found


def shown_replies(session: Session, *, post_ids: Sequence[int]) -> dict[int, tuple[int | None, str | None]]:
    """What each post's card shows of its reply right now: the current reply's id and state (none: ``(None, None)``)."""
    found = _current_replies(session, post_ids=post_ids)
    return {pid: (found[pid].id, found[pid].state) if pid in found else (None, None) for pid in post_ids}


def _parents_by_external_id(session: Session, *, posts: Sequence[Post]) -> dict[int, str]:
    """Find thread parents that are stored but not linked by ``parent_id`` (listeners may lag behind)."""
    wanted = {(p.network, p.in_reply_to_external_id): p.id for p in posts if p.in_reply_to_external_id}
    if not wanted:
        return {}
    ids = {ext for _, ext in wanted}
    # The network too, so the lookup uses the (network, external_id) unique index instead of reading every post.
    networks = {network for network, _ in wanted}
    stmt = select(col(Post.network), col(Post.external_id), col(Post.text)).where(
        col(Post.network).in_(networks), col(Post.external_id).in_(ids)
    )
    found: dict[int, str] = {}
    for network, external_id, text in session.execute(stmt).all():
        child = wanted.get((network, external_id))
        if child is not None:
            found[child] = text
    return found


def _item(
    post: Post,
    score: Score | None,
    author: Author | None,
    staff: Staff | None,
    parent_text: str | None,
    reply: Reply | None,
    history: dict[int, tuple[int, int]] | None = None,
) -> QueueItem:
    assert post.id is not None
    seconds = sla_seconds(
        crisis=bool(score and score.crisis),
        is_dm=post.kind == PostKind.DM,
        complaint=score.complaint if score else 0.0,
    )
    created = post.created_at if post.created_at.tzinfo else post.created_at.replace(tzinfo=UTC)
    stored_due = post.due_at if post.due_at is None or post.due_at.tzinfo else post.due_at.replace(tzinfo=UTC)
    total, answered = (history or {}).get(post.author_id or -1, (1, 0))
    return QueueItem(
        post_id=post.id,
        network=post.network,
        kind=post.kind,
        status=post.status,
        text=post.text,
        url=post.url,
        manual_only=post.manual_only,
        created_at=created,
        # The responder's own clock (policies, business hours) wins over the default targets.
        due_at=stored_due or due_at(created, seconds),
        urgency=post.urgency if post.urgency is not None else (score.urgency if score else None),
        author_username=author.username if author else "",
        author_display_name=author.display_name if author else "",
        author_followers=author.followers_count if author else 0,
        author_verified=author.verified if author else False,
        sentiment=score.sentiment if score else None,
        p_negative=score.p_negative if score else None,
        p_neutral=score.p_neutral if score else None,
        p_positive=score.p_positive if score else None,
        crisis=bool(score and score.crisis),
        language=score.language if score else post.lang,
        reasons=list(score.reasons) if score else [],
        assignee_id=post.assignee_id,
        assignee_name=staff.name if staff else None,
        parent_text=parent_text,
        reply_id=reply.id if reply else None,
        reply_state=reply.state if reply else None,
        reply_text=reply.text if reply else None,
        reply_note=reply.note if reply else None,
        author_id=post.author_id,
        # This post itself is one of the author's posts; "earlier" leaves it out.
        author_earlier_posts=max(total - 1, 0),
        author_answered=answered,
        promised_at=aware_or_none(post.promised_at),
        promise_basis=post.promise_basis,
        reply_promised_at=aware_or_none(reply.promised_at) if reply else None,
        updates_stopped=bool(post.updates_stopped),
    )


def filter_options(session: Session) -> FilterOptions:
    """Return the distinct networks, kinds, languages and sentiments among open posts."""

    # One pass over the open posts for the four lists (four DISTINCT queries read the backlog four times).
    columns = (col(Post.network), col(Post.kind), col(Score.language), col(Score.sentiment))
    stmt = _with_score(select(*columns).select_from(Post), QueueFilters()).group_by(*columns)
    found: list[set[str]] = [set(), set(), set(), set()]
    for row in session.execute(stmt).all():
        for values, value in zip(found, row, strict=True):
            if value is not None:
                values.add(str(value))
    networks, kinds, languages, sentiments = (sorted(v) for v in found)
    return FilterOptions(networks=networks, kinds=kinds, languages=languages, sentiments=sentiments)


def posts_per_hour(session: Session, *, hours: int = 48, now: datetime | None = None) -> list[HourCount]:
    """Count posts per hour (UTC) and sentiment over the last ``hours``; unscored posts count as 'unscored'."""
    now = now or utcnow()
    since = now - timedelta(hours=hours)
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        bucket: Any = func.strftime("%Y-%m-%d %H:00:00", col(Post.created_at))
    else:
        # timestamptz truncates in the session's time zone; convert to UTC first so hours match SQLite's.
        bucket = func.date_trunc("hour", func.timezone("UTC", col(Post.created_at)))
    sentiment = func.coalesce(col(Score.sentiment), "unscored")
    stmt = (
        select(bucket, sentiment, func.count())
        .select_from(Post)
        .outerjoin(Score, col(Score.post_id) == col(Post.id))
        .where(col(Post.created_at) >= since)
        .group_by(bucket, sentiment)
        .order_by(bucket)
    )
    out: list[HourCount] = []
    for hour, label, n in session.execute(stmt).all():
        when = datetime.fromisoformat(hour) if isinstance(hour, str) else hour
        out.append(HourCount(hour=when.replace(tzinfo=UTC) if when.tzinfo is None else when, sentiment=label, count=n))
    return out
