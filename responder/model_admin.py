"""What the Admin page's model section shows and does: the model scoring now, refit attempts, a rollback."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import Session, col

from models.audit import audit
from models.heads import active_version, attempts, model_id_of, rollback
from models.tables import HeadsVersion, RefitAttempt, Score, Staff
from responder.permissions import Action, require


@dataclass(frozen=True, slots=True)
class ModelView:
    """The newest score's model, each base model's active heads (or none), and the latest attempts."""

    latest_scored: str | None
    current: dict[str, str]
    attempts: list[RefitAttempt]


def model_view(session: Session) -> ModelView:
    """Read the model section: plain reads, nothing locked."""
    latest = session.execute(select(col(Score.model_id)).order_by(col(Score.id).desc()).limit(1)).scalar()
    bases = set(session.execute(select(col(HeadsVersion.base_model)).distinct()).scalars())
    if latest:
        bases.add(str(latest).split("+heads-")[0])
    current = {}
    for base in sorted(bases):
        row = active_version(session, base)
        current[base] = model_id_of(base, row.id if row is not None else None)
    return ModelView(latest_scored=latest, current=current, attempts=attempts(session))


def rollback_heads(session: Session, *, actor: Staff, base: str) -> RefitAttempt:
    """An admin goes back to the heads before the active version of ``base``; recorded and audited. Commits."""
    require(actor, Action.ADMIN)
    who = f"staff:{actor.id}"
    attempt = rollback(session, base=base, actor=who, reason="rolled back from the Admin page")
    audit(session, actor=who, action="heads_rolled_back", model=attempt.new_model_id, left=attempt.old_model_id)
    session.commit()
    return attempt
