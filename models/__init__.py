"""SQLModel tables and the data-access functions that every stage shares."""

from models import knowledge as _knowledge  # noqa: F401  (registers the knowledge-base tables with the rest)
from models.tables import (
    Assignment,
    AuditEvent,
    Author,
    Post,
    PostKind,
    PostStatus,
    Reply,
    ReplyState,
    Role,
    Score,
    SourceCursor,
    Staff,
    utcnow,
)

__all__ = [
    "Assignment",
    "AuditEvent",
    "Author",
    "Post",
    "PostKind",
    "PostStatus",
    "Reply",
    "ReplyState",
    "Role",
    "Score",
    "SourceCursor",
    "Staff",
    "utcnow",
]
