"""Follow-up tasks: a keyword hit turned into work for one person, and that work marked done.

Turning a post into a task closes the post (it needs no reply from the desk: the person follows it up), under
the post's row lock and with the same rules as closing it by hand (agents only their own posts). The assignee is
told through their notifications; every step is in the audit log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from ground.clock import aware_or_none
from models.alerts import TASK, add_alert
from models.audit import audit
from models.tables import Post, PostStatus, Staff, Task, utcnow
from responder.actions import MAX_NOTE_CHARS, InvalidReply, ReplyConflict, check_input
from responder.lifecycle import locked_post, resolve_post
from responder.permissions import Action, can, require, require_on

# What the post's unapproved replies are closed with (the desk shows it in the reader's language).
HANDLED_BY_TASK = "handled by a task"
# A due time further back than this is a typing mistake, not a plan; one further out than a year, too.
PAST_SLACK = timedelta(minutes=5)
LONGEST = timedelta(days=366)
CLOSED = (PostStatus.REPLIED, PostStatus.DISMISSED, PostStatus.ESCALATED, PostStatus.NO_ACTION)


@dataclass(frozen=True, slots=True)
class TaskRow:
    """One task as the desk lists it, with the names of the people in it and the post it came from."""

    task_id: int
    post_id: int
    post_text: str
    network: str
    conversation_id: int | None
    note: str
    due_at: datetime
    created_at: datetime
    assignee_id: int
    assignee_name: str
    created_by_name: str
    done_at: datetime | None
    done_by_name: str | None


def may_take_tasks(member: Staff) -> bool:
    """Tell whether ``member`` can be given a task: someone who works posts and still signs in."""
    return not member.disabled and can(member, Action.COMPLETE_TASK)


def convert_to_task(
    session: Session, *, post_id: int, staff: Staff, assignee_id: int, due_at: datetime, note: str = ""
) -> Task:
    """Close an open post as handled by a new task for ``assignee_id``, due at ``due_at``; notify the assignee."""
    require(staff, Action.DISMISS_POST)
    note = check_input(note, what="the note", limit=MAX_NOTE_CHARS)
    due = aware_or_none(due_at)
    now = utcnow()
    if due is None or due < now - PAST_SLACK:
        raise InvalidReply("the due time is in the past")
    if due > now + LONGEST:
        raise InvalidReply("the due time is more than a year away")
    assignee = session.get(Staff, assignee_id)
    if assignee is None or not may_take_tasks(assignee):
        raise InvalidReply("choose someone on the team who works posts")
    post = locked_post(session, post_id)
    if post is None:
        raise ReplyConflict(f"post {post_id} does not exist")
    require_on(staff, Action.DISMISS_POST, assignee_id=post.assignee_id)
    if post.status in CLOSED:
        raise ReplyConflict(f"post {post_id} is already {post.status}")
    task = Task(post_id=post_id, assignee_id=assignee_id, created_by_id=staff.id or 0, note=note, due_at=due)
    session.add(task)
    session.flush()
    by = f"staff:{staff.id}"
    resolve_post(
        session, post, status=PostStatus.NO_ACTION, at=now, by=by, note=f"{HANDLED_BY_TASK} #{task.id}",
        drafts_note=HANDLED_BY_TASK,
    )  # fmt: skip
    audit(session, actor=by, action="post_converted_to_task", post_id=post_id, task_id=task.id,
          assignee_id=assignee_id, due_at=due.isoformat(), note=note)  # fmt: skip
    # One notification per task, whoever made it (a person may give themselves a reminder too).
    add_alert(session, key=f"task:{task.id}", kind=TASK, staff_id=assignee_id, post_id=post_id,
              message=note or f"task {task.id} due {due:%Y-%m-%d %H:%M} UTC")  # fmt: skip
    session.commit()
    session.refresh(task)
    return task


def complete_task(session: Session, *, task_id: int, staff: Staff) -> Task:
    """Mark a task done by ``staff`` now; agents only their own tasks, and a task is done once."""
    require(staff, Action.COMPLETE_TASK)
    task = session.get(Task, task_id, populate_existing=True)
    if task is None:
        raise ReplyConflict(f"task {task_id} does not exist")
    require_on(staff, Action.COMPLETE_TASK, assignee_id=task.assignee_id)
    now = utcnow()
    # The open-state check in the WHERE clause: of two people marking it done at once, one wins.
    result = session.execute(
        update(Task)
        .where(col(Task.id) == task_id, col(Task.done_at).is_(None))
        .values(done_at=now, done_by_id=staff.id)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.rollback()
        raise ReplyConflict(f"task {task_id} is already done")
    audit(session, actor=f"staff:{staff.id}", action="task_done", post_id=task.post_id, task_id=task_id)
    session.commit()
    session.refresh(task)
    return task


def list_tasks(
    session: Session, *, assignee_id: int | None, include_done: bool = True, limit: int = 100
) -> list[TaskRow]:
    """Tasks of one person (``None``: everyone's), open ones first by due time, then the latest done."""
    assignee, creator, closer = aliased(Staff), aliased(Staff), aliased(Staff)
    stmt = (
        select(Task, Post, col(assignee.name), col(creator.name), col(closer.name))
        .join(Post, col(Post.id) == col(Task.post_id))
        .join(assignee, col(assignee.id) == col(Task.assignee_id))
        .join(creator, col(creator.id) == col(Task.created_by_id))
        .outerjoin(closer, col(closer.id) == col(Task.done_by_id))
    )
    if assignee_id is not None:
        stmt = stmt.where(col(Task.assignee_id) == assignee_id)
    if not include_done:
        stmt = stmt.where(col(Task.done_at).is_(None))
    # Open ones by due time (a done one's due time says nothing about when to look at it), then the latest done.
    open_due = case((col(Task.done_at).is_(None), col(Task.due_at)), else_=None)
    stmt = stmt.order_by(
        col(Task.done_at).is_not(None), open_due.asc(), col(Task.done_at).desc(), col(Task.id).desc()
    ).limit(limit)
    rows: list[TaskRow] = []
    for task, post, who, made_by, done_by in session.execute(stmt).all():
        assert task.id is not None and post.id is not None
        due = aware_or_none(task.due_at)
        assert due is not None
        rows.append(
            TaskRow(
                task_id=task.id, post_id=post.id, post_text=post.text, network=post.network,
                conversation_id=post.conversation_ref, note=task.note, due_at=due,
                created_at=aware_or_none(task.created_at) or due, assignee_id=task.assignee_id,
                assignee_name=who, created_by_name=made_by, done_at=aware_or_none(task.done_at),
                done_by_name=done_by,
            )
        )  # fmt: skip
    return rows


def open_task_count(session: Session, *, assignee_id: int) -> int:
    """How many tasks of one person are still open (the sidebar's number)."""
    stmt = select(func.count()).where(col(Task.assignee_id) == assignee_id, col(Task.done_at).is_(None))
    return int(session.execute(stmt).scalar_one())
