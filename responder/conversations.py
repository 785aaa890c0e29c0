"""Conversations as the responder works them: one owner each, who may read them, notes, and closing answered ones.

``conversations_of_authors`` is the seam other pages (the customer page) call to list a person's conversations.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from models.audit import audit
from models.conversations import OPEN_STATUSES, OWN_KINDS, refresh_conversation
from models.tables import Conversation, ConversationKind, ConversationStatus, Note, Post, PostStatus, Role, Staff
from models.tables import utcnow as _utcnow
from responder.actions import InvalidReply, check_input
from responder.lifecycle import locked_post, resolve_post
from responder.permissions import Action, NotAllowed, can

if TYPE_CHECKING:
    from responder.team import Team

MAX_NOTE_CHARS = 4000

# The conversation columns the assignment sweep reads beside each claimed post.
THREAD_COLUMNS = (
    col(Conversation.id),
    col(Conversation.assignee_id),
    col(Conversation.status),
    col(Conversation.first_unanswered_at),
)


@dataclass(frozen=True, slots=True)
class Thread:
    """A claimed post's conversation as the sweep sees it (all None for a post outside any conversation)."""

    id: int | None
    assignee_id: int | None
    status: str | None
    first_unanswered_at: datetime | None

    def owner_for_new_message(self, team: Team) -> int | None:
        """The owner a new message goes to: the open conversation's owner, while they can still work."""
        if self.id is None or self.assignee_id is None or self.status != ConversationStatus.OPEN:
            return None
        slot = team.slots.get(self.assignee_id)
        member = team.staff.get(self.assignee_id)
        if slot is None or member is None or not slot.available or member.disabled:
            return None
        return self.assignee_id


def claim_owner(session: Session, conversation_id: int, staff_id: int, *, expected: int | None) -> int | None:
    """Make ``staff_id`` the conversation's owner if its owner is still ``expected``; return the owner after.

    A conditional UPDATE: on PostgreSQL a second writer waits for the first's row lock, then sees the new owner
    and leaves it, so a conversation never gets two owners across workers.
    """
    done = session.execute(
        update(Conversation)
        .where(col(Conversation.id) == conversation_id, col(Conversation.assignee_id).is_not_distinct_from(expected))
        .values(assignee_id=staff_id)
        .returning(col(Conversation.id))
        .execution_options(synchronize_session=False)
    ).first()
    if done is not None:
        return staff_id
    return session.execute(
        select(col(Conversation.assignee_id)).where(col(Conversation.id) == conversation_id)
    ).scalar_one_or_none()


def lock_free_threads(session: Session, ids: Collection[int]) -> dict[int, Thread]:
    """Lock the conversations no other transaction holds and read them again; busy ones are left out.

    The assignment sweep takes every conversation of a claimed page in one statement before it gives any of them an
    owner, so it never waits for a conversation row while it holds the team lock (the outbox and the listeners hold
    such rows briefly; a busy conversation's post is taken by the next sweep). One statement, not one per post: a
    round trip each cost most of a sweep's time on a loaded 2-core machine, under the team lock (issue 17).
    The rows read here are fresher than the claim's: another worker may have given the conversation an owner since.
    """
    if not ids:
        return {}
    stmt = select(*THREAD_COLUMNS).where(col(Conversation.id).in_(sorted(ids))).order_by(col(Conversation.id))
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return {row[0]: Thread(*row) for row in session.execute(stmt).all()}


def write_owners(session: Session, owners: Mapping[int, int]) -> None:
    """Make each staff id the owner of its conversation, rows the caller holds locked (``lock_free_threads``)."""
    if not owners:
        return
    table = Conversation.__table__  # type: ignore[attr-defined]
    session.execute(
        update(table).where(table.c.id == bindparam("cid")).values(assignee_id=bindparam("sid")),
        [{"cid": cid, "sid": sid} for cid, sid in sorted(owners.items())],
    )


def move_conversation(session: Session, *, conversation_id: int, staff_id: int) -> None:
    """Give the conversation to ``staff_id`` (a reassignment); its waiting messages go with it (caller commits)."""
    session.flush()
    session.execute(
        update(Post)
        .where(
            col(Post.conversation_ref) == conversation_id,
            col(Post.status).in_([PostStatus.SCORED, PostStatus.ASSIGNED]),
            col(Post.assignee_id).is_not(None),
        )
        .values(assignee_id=staff_id, status=PostStatus.ASSIGNED)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Conversation)
        .where(col(Conversation.id) == conversation_id)
        .values(assignee_id=staff_id)
        .execution_options(synchronize_session=False)
    )


def may_view(staff: Staff, conversation: Conversation) -> bool:
    """Whether ``staff`` may open the conversation: managers and admins any; agents public ones and their own."""
    if not can(staff, Action.VIEW_QUEUE):
        return False
    if staff.role in (Role.ADMIN, Role.MANAGER):
        return True
    # A private thread is for its owner: an agent reads another person's DMs only once they are given to them.
    return conversation.kind != ConversationKind.DM or conversation.assignee_id in (None, staff.id)


def require_view(session: Session, *, conversation_id: int, staff: Staff) -> Conversation:
    """The conversation if ``staff`` may open it; ``NotAllowed`` otherwise, ``LookupError`` when there is none."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise LookupError(f"conversation {conversation_id} does not exist")
    if not may_view(staff, conversation):
        raise NotAllowed(f"{staff.name} ({staff.role}) may not open conversation {conversation_id}")
    return conversation


def add_note(session: Session, *, conversation_id: int, staff: Staff, text: str) -> Note:
    """Store an internal note on the conversation; it is read by staff only and never sent to any network."""
    require_view(session, conversation_id=conversation_id, staff=staff)
    cleaned = check_input(text, what="the note", limit=MAX_NOTE_CHARS)
    if not cleaned:
        raise InvalidReply("the note is empty")
    note = Note(conversation_id=conversation_id, staff_id=staff.id, text=cleaned)  # type: ignore[arg-type]
    session.add(note)
    session.flush()
    audit(session, actor=f"staff:{staff.id}", action="note_added", conversation_id=conversation_id, note_id=note.id)
    session.commit()
    return note


def earlier_open_messages(session: Session, answered: Post) -> list[int]:
    """The ids of the messages of ``answered``'s conversation, up to it, that still wait for us (not itself)."""
    if answered.conversation_ref is None:
        return []
    return list(
        session.execute(
            select(col(Post.id)).where(
                col(Post.conversation_ref) == answered.conversation_ref,
                col(Post.id) != answered.id,
                col(Post.status).in_(list(OPEN_STATUSES)),
                col(Post.kind).not_in(list(OWN_KINDS)),
                col(Post.created_at) <= answered.created_at,
            )
        ).scalars()
    )


def close_answered(engine: Engine, *, post_id: int, reply_id: int) -> list[int]:
    """After the answer to ``post_id`` went out, close the conversation's earlier messages it answered.

    Its own transaction, after the send was recorded: each message is taken under its row lock, alone, so this
    never holds one post while waiting for another. Returns the posts it closed.
    """
    closed: list[int] = []
    with Session(engine) as session:
        answered = session.get(Post, post_id)
        if answered is None or answered.conversation_ref is None:
            return closed
        conversation_id = answered.conversation_ref
        now = _utcnow()
        for sibling_id in earlier_open_messages(session, answered):
            post = locked_post(session, sibling_id)
            if post is None or post.status not in OPEN_STATUSES:
                session.rollback()
                continue
            resolve_post(session, post, status=PostStatus.REPLIED, at=now, by="auto:conversation",
                         note=f"answered in its conversation by reply {reply_id}",
                         drafts_note=f"answered in the conversation by reply {reply_id}")  # fmt: skip
            audit(session, actor="auto:conversation", action="answered_in_conversation", post_id=sibling_id,
                  reply_id=reply_id)  # fmt: skip
            session.commit()
            closed.append(sibling_id)
        refresh_conversation(session, conversation_id)
        session.commit()
    return closed


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """One conversation of a person, as a list shows it."""

    id: int
    network: str
    kind: str
    status: str
    assignee_id: int | None
    author_id: int | None
    messages: int
    first_unanswered_at: datetime | None
    last_message_at: datetime


def conversations_of_authors(session: Session, author_ids: Sequence[int]) -> list[ConversationSummary]:
    """Every conversation with any of ``author_ids`` (one person's identities), newest activity first."""
    ids = sorted({int(a) for a in author_ids})
    if not ids:
        return []
    counts = (
        select(col(Post.conversation_ref).label("cid"), func.count().label("n"))
        .where(col(Post.conversation_ref).in_(select(col(Conversation.id)).where(col(Conversation.author_id).in_(ids))))
        .group_by(col(Post.conversation_ref))
        .subquery()
    )
    stmt: Any = (
        select(Conversation, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.cid == col(Conversation.id))
        .where(col(Conversation.author_id).in_(ids))
        .order_by(col(Conversation.last_message_at).desc(), col(Conversation.id).desc())
    )
    return [
        ConversationSummary(
            id=c.id,
            network=c.network,
            kind=c.kind,
            status=c.status,
            assignee_id=c.assignee_id,
            author_id=c.author_id,
            messages=int(n),
            first_unanswered_at=c.first_unanswered_at,
            last_message_at=c.last_message_at,
        )
        for c, n in session.execute(stmt).all()
    ]
