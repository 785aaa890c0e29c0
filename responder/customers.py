"""Staff's actions on customers: link and unlink network identities (audited), tags and notes.

Every function checks the permission itself (the desk's buttons are not the guard), writes an audit event with
who did it, and commits, as ``responder.actions`` does. Notes are internal: nothing hands them to a sender.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlmodel import Session, col

from models.audit import audit
from models.customers import ensure_customers
from models.store import clean_text
from models.tables import Author, Customer, CustomerLink, CustomerNote, CustomerTag, Staff
from responder.permissions import Action, require

MAX_TAG = 64
MAX_NOTE = 4000
MAX_BASIS = 255


class CustomerError(ValueError):
    """A link, tag or note that cannot be made as asked (unknown customer, nothing to unlink, empty text)."""


def _done(session: Session, staff: Staff, action: str, **detail: Any) -> None:
    """Record who did what in the audit log and commit the change with it."""
    audit(session, actor=f"staff:{staff.id}", action=action, **detail)
    session.commit()


def _staff_id(staff: Staff) -> int:
    if staff.id is None:
        raise CustomerError("the acting staff member is not stored")
    return staff.id


def _locked_author(session: Session, author_id: int) -> Author:
    """Read the identity under its row lock (PostgreSQL), so two people linking it at once are serialised."""
    stmt = select(Author).where(col(Author.id) == author_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    author = session.execute(stmt).scalar_one_or_none()
    if author is None:
        raise CustomerError(f"no identity {author_id}")
    if author.customer_id is None:
        ensure_customers(session, [author_id])
        session.refresh(author)
    return author


def _identities(session: Session, customer_id: int) -> int:
    stmt = select(func.count()).select_from(Author).where(col(Author.customer_id) == customer_id)
    return int(session.execute(stmt).scalar_one())


def _absorb(session: Session, *, source: int, target: int) -> None:
    """Move an emptied customer's tags and notes to the customer its last identity joined."""
    have = set(session.execute(select(col(CustomerTag.tag)).where(col(CustomerTag.customer_id) == target)).scalars())
    for tag in session.execute(select(CustomerTag).where(col(CustomerTag.customer_id) == source)).scalars().all():
        if tag.tag in have:
            session.delete(tag)
        else:
            tag.customer_id = target
            session.add(tag)
    for note in session.execute(select(CustomerNote).where(col(CustomerNote.customer_id) == source)).scalars().all():
        note.customer_id = target
        session.add(note)


def link_identity(session: Session, *, staff: Staff, customer_id: int, author_id: int, basis: str = "") -> CustomerLink:
    """Make ``author_id`` one of ``customer_id``'s identities (a person's click, never automatic); audited.

    The identity's history comes with it. If its old customer has no identity left, that customer's tags and
    notes move too, so nothing written about the person is lost.
    """
    require(staff, Action.EDIT_CUSTOMER)
    if session.get(Customer, customer_id) is None:
        raise CustomerError(f"no customer {customer_id}")
    author = _locked_author(session, author_id)
    source = author.customer_id
    assert source is not None
    if source == customer_id:
        raise CustomerError(f"identity {author_id} already belongs to customer {customer_id}")
    author.customer_id = customer_id
    session.add(author)
    session.flush()
    if _identities(session, source) == 0:
        _absorb(session, source=source, target=customer_id)
    link = CustomerLink(
        action="link",
        author_id=author_id,
        from_customer_id=source,
        to_customer_id=customer_id,
        staff_id=_staff_id(staff),
        basis=clean_text(basis)[:MAX_BASIS],
    )
    session.add(link)
    session.flush()
    _done(session, staff, "identity_linked", author_id=author_id, from_customer=source, to_customer=customer_id)
    return link


def unlink_identity(session: Session, *, staff: Staff, author_id: int) -> CustomerLink:
    """Take ``author_id`` out of its customer: it gets back the customer it was linked from (if that one is
    still empty) or a new one of its own, with its own history; audited."""
    require(staff, Action.EDIT_CUSTOMER)
    author = _locked_author(session, author_id)
    current = author.customer_id
    assert current is not None
    if _identities(session, current) < 2:
        raise CustomerError(f"identity {author_id} is the only identity of customer {current}: nothing to unlink")
    last = session.execute(
        select(CustomerLink)
        .where(col(CustomerLink.author_id) == author_id, col(CustomerLink.action) == "link")
        .order_by(col(CustomerLink.id).desc())
        .limit(1)
    ).scalar_one_or_none()
    target: int | None = None
    if last is not None and last.to_customer_id == current and _identities(session, last.from_customer_id) == 0:
        target = last.from_customer_id
    if target is None:
        fresh = Customer()
        session.add(fresh)
        session.flush()
        target = fresh.id
    assert target is not None
    author.customer_id = target
    session.add(author)
    link = CustomerLink(
        action="unlink", author_id=author_id, from_customer_id=current, to_customer_id=target, staff_id=_staff_id(staff)
    )
    session.add(link)
    session.flush()
    _done(session, staff, "identity_unlinked", author_id=author_id, from_customer=current, to_customer=target)
    return link


def _clean_tag(tag: str) -> str:
    cleaned = " ".join(clean_text(tag).split())
    if not cleaned:
        raise CustomerError("a tag needs some text")
    if len(cleaned) > MAX_TAG:
        raise CustomerError(f"a tag is at most {MAX_TAG} characters")
    return cleaned


def add_tag(session: Session, *, staff: Staff, customer_id: int, tag: str) -> bool:
    """Tag a customer ("VIP"); False when the tag was there already."""
    require(staff, Action.EDIT_CUSTOMER)
    cleaned = _clean_tag(tag)
    if session.get(Customer, customer_id) is None:
        raise CustomerError(f"no customer {customer_id}")
    exists = session.execute(
        select(col(CustomerTag.id)).where(col(CustomerTag.customer_id) == customer_id, col(CustomerTag.tag) == cleaned)
    ).first()
    if exists is not None:
        return False
    session.add(CustomerTag(customer_id=customer_id, tag=cleaned, staff_id=_staff_id(staff)))
    session.flush()
    _done(session, staff, "customer_tagged", customer_id=customer_id, tag=cleaned)
    return True


def remove_tag(session: Session, *, staff: Staff, customer_id: int, tag: str) -> bool:
    """Take a tag off a customer; False when it was not there."""
    require(staff, Action.EDIT_CUSTOMER)
    result = session.execute(
        delete(CustomerTag).where(col(CustomerTag.customer_id) == customer_id, col(CustomerTag.tag) == tag)
    )
    removed = bool(getattr(result, "rowcount", 0))
    if removed:
        _done(session, staff, "customer_untagged", customer_id=customer_id, tag=tag)
    return removed


def add_note(session: Session, *, staff: Staff, customer_id: int, text: str) -> CustomerNote:
    """Write an internal note about a customer (staff only: notes are never sent to any network)."""
    require(staff, Action.EDIT_CUSTOMER)
    cleaned = clean_text(text).strip()
    if not cleaned:
        raise CustomerError("a note needs some text")
    if len(cleaned) > MAX_NOTE:
        raise CustomerError(f"a note is at most {MAX_NOTE} characters")
    if session.get(Customer, customer_id) is None:
        raise CustomerError(f"no customer {customer_id}")
    note = CustomerNote(customer_id=customer_id, staff_id=_staff_id(staff), text=cleaned)
    session.add(note)
    session.flush()
    # The audit names the note, never its text: the log is read more widely than the customer's page.
    _done(session, staff, "customer_noted", customer_id=customer_id, note_id=note.id)
    return note
