"""What an admin changes from the desk: staff, shifts, SLA policies and saved replies. Permissions checked here."""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import available_timezones

from sqlalchemy import select
from sqlmodel import Session, col

from models.audit import audit
from models.tables import Role, SavedReply, Shift, SlaPolicy, Staff
from models.validate import check_languages
from responder.actions import MAX_REPLY_CHARS, check_input
from responder.drafts import edit_saved_reply
from responder.permissions import Action, require
from responder.policy import parse_codes

CHANNELS = ("public", "dm")
LANES = ("crisis", "complaint", "other")
UI_LANGUAGES = ("es", "en")
# The bounds the admin page's widgets keep to; the functions hold them too, whoever calls.
MAX_CAPACITY = 500
MAX_SLA_SECONDS = 7 * 86_400


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def check_timezone(timezone: str) -> str:
    """Return an IANA time zone name the SLA clock can use (e.g. Europe/Madrid), or raise ``ValueError``.

    Checked against the list of zones, not by opening one: ``ZoneInfo("Europe")`` is a directory and
    raises ``IsADirectoryError``, and a bad name stored here would break every later SLA computation.
    """
    name = timezone.strip()
    if name not in _zones():
        raise ValueError(f"unknown time zone {name[:40]!r} (e.g. UTC, Europe/Madrid)")
    return name


def update_staff(
    session: Session,
    *,
    actor: Staff,
    staff_id: int,
    role: str,
    capacity: int,
    languages: str,
    channels: str,
    available: bool,
) -> Staff:
    """Change a staff member's role, capacity, languages, channels and availability."""
    require(actor, Action.ADMIN)
    member = session.get(Staff, staff_id)
    if member is None:
        raise LookupError(f"staff {staff_id} does not exist")
    if role not in set(Role):
        raise ValueError(f"unknown role {role!r}")
    if not 0 <= capacity <= MAX_CAPACITY:
        raise ValueError(f"capacity from 0 to {MAX_CAPACITY}")
    bad = [c for c in parse_codes(channels) if c not in CHANNELS]
    if bad:
        raise ValueError(f"unknown channels: {', '.join(repr(c[:20]) for c in bad[:3])}")
    stored_languages = check_languages(languages)
    # An admin must not lock everyone out of the admin page by demoting the last admin.
    if member.role == Role.ADMIN and role != Role.ADMIN:
        admins = session.execute(select(col(Staff.id)).where(col(Staff.role) == Role.ADMIN)).scalars().all()
        if len(admins) <= 1:
            raise ValueError("keep at least one admin")
    member.role = role
    member.capacity = capacity
    member.languages = stored_languages
    member.channels = ",".join(sorted(parse_codes(channels)))
    member.available = available
    session.add(member)
    audit(session, actor=f"staff:{actor.id}", action="staff_updated", staff=staff_id)
    session.commit()
    return member


def add_shift(
    session: Session, *, actor: Staff, staff_id: int, weekday: int, start_minute: int, end_minute: int, timezone: str
) -> Shift:
    """Add a weekly working window to a staff member."""
    require(actor, Action.ADMIN)
    if not (0 <= weekday <= 6 and 0 <= start_minute <= 1440 and 0 <= end_minute <= 1440):
        raise ValueError("weekday 0-6, minutes 0-1440")
    timezone = check_timezone(timezone)
    if session.get(Staff, staff_id) is None:
        raise LookupError(f"staff {staff_id} does not exist")
    shift = Shift(
        staff_id=staff_id, weekday=weekday, start_minute=start_minute, end_minute=end_minute, timezone=timezone
    )
    session.add(shift)
    audit(session, actor=f"staff:{actor.id}", action="shift_added", staff=staff_id)
    session.commit()
    return shift


def remove_shift(session: Session, *, actor: Staff, shift_id: int) -> None:
    """Delete one weekly working window."""
    require(actor, Action.ADMIN)
    shift = session.get(Shift, shift_id)
    if shift is not None:
        session.delete(shift)
        audit(session, actor=f"staff:{actor.id}", action="shift_removed", staff=shift.staff_id)
        session.commit()


def set_sla_policy(
    session: Session, *, actor: Staff, channel: str, lane: str, seconds: int, business_hours: bool
) -> SlaPolicy:
    """Create or change the first-response target of one channel and lane."""
    require(actor, Action.ADMIN)
    if channel not in CHANNELS or lane not in LANES or not 0 < seconds <= MAX_SLA_SECONDS:
        raise ValueError(f"channel public|dm, lane crisis|complaint|other, seconds from 1 to {MAX_SLA_SECONDS}")
    row = session.execute(
        select(SlaPolicy).where(col(SlaPolicy.channel) == channel, col(SlaPolicy.lane) == lane)
    ).scalars().first() or SlaPolicy(channel=channel, lane=lane, seconds=seconds)
    row.seconds = seconds
    row.business_hours = business_hours
    session.add(row)
    audit(session, actor=f"staff:{actor.id}", action="sla_policy_set", channel=channel, lane=lane, seconds=seconds)
    session.commit()
    return row


def save_reply_text(session: Session, *, actor: Staff, saved_reply_id: int, text: str) -> SavedReply:
    """Change a saved reply's text (admins only)."""
    require(actor, Action.ADMIN)
    if not text.strip():
        raise ValueError("a saved reply cannot be empty")
    text = check_input(text, what="the saved reply", limit=MAX_REPLY_CHARS)
    row = edit_saved_reply(session, saved_reply_id=saved_reply_id, text=text, actor=f"staff:{actor.id}")
    audit(session, actor=f"staff:{actor.id}", action="saved_reply_edited", saved_reply=saved_reply_id)
    session.commit()
    return row


def set_ui_language(session: Session, *, staff: Staff, language: str) -> None:
    """Remember the interface language a person chose (anyone may set their own)."""
    if language not in UI_LANGUAGES or staff.ui_language == language:
        return
    staff.ui_language = language
    session.add(staff)
    session.commit()
