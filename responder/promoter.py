"""Which satisfaction question goes out: the 1–5 one, or the promoter one (0–10, "would you recommend us?").

An admin's switch on the desk, kept in the team's desk settings (``desk_setting``) like the overflow policy.
Until an admin sets it, the deployment's ``ESCUCHA_SATISFACTION_PROMOTER`` decides, so an existing set-up asks
what it asked before.
"""

from __future__ import annotations

from sqlmodel import Session

from models.audit import audit
from models.desk_settings import get_setting, set_setting
from models.tables import Staff
from responder.permissions import Action, require

PROMOTER_KEY = "satisfaction_promoter"
ON, OFF = "on", "off"


def promoter_mode(session: Session, *, default: bool) -> bool:
    """Whether the promoter question is asked: the admin's choice, or ``default`` (the environment's) if none."""
    value = get_setting(session, PROMOTER_KEY, "")
    # A value this version does not know (hand-edited row) is no choice at all: the deployment's default holds.
    return {ON: True, OFF: False}.get(value, default)


def promoter_chosen(session: Session) -> bool:
    """Whether an admin has set the switch (otherwise the environment's value is in force)."""
    return get_setting(session, PROMOTER_KEY, "") in (ON, OFF)


def set_promoter_mode(session: Session, *, actor: Staff, on: bool) -> None:
    """Ask the promoter question (``on``) or the 1–5 one from the next survey on (admins only)."""
    require(actor, Action.ADMIN)
    value = ON if on else OFF
    set_setting(session, key=PROMOTER_KEY, value=value, by=f"staff:{actor.id}")
    audit(session, actor=f"staff:{actor.id}", action="satisfaction_promoter_set", value=value)
    session.commit()
