"""Who may do what: checked in the functions the review app calls, not only by hiding buttons."""

from __future__ import annotations

import enum

from models.tables import Role, Staff


class Action(enum.StrEnum):
    """Actions on posts and replies that need a permission."""

    SUBMIT_REPLY = "submit_reply"
    APPROVE_REPLY = "approve_reply"
    SEND_WITHOUT_APPROVAL = "send_without_approval"
    REJECT_REPLY = "reject_reply"
    DISMISS_POST = "dismiss_post"
    ESCALATE_POST = "escalate_post"
    REASSIGN = "reassign"
    VIEW_QUEUE = "view_queue"
    VIEW_INBOX = "view_inbox"
    CORRECT_LABELS = "correct_labels"
    VIEW_TRENDS = "view_trends"
    EDIT_KNOWLEDGE = "edit_knowledge"
    ADMIN = "admin"
    VIEW_CUSTOMER = "view_customer"
    EDIT_CUSTOMER = "edit_customer"
    COMPLETE_TASK = "complete_task"


_ALLOWED: dict[Action, frozenset[Role]] = {
    Action.SUBMIT_REPLY: frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT}),
    Action.APPROVE_REPLY: frozenset({Role.ADMIN, Role.MANAGER}),
    Action.SEND_WITHOUT_APPROVAL: frozenset({Role.ADMIN, Role.MANAGER}),
    Action.REJECT_REPLY: frozenset({Role.ADMIN, Role.MANAGER}),
    Action.DISMISS_POST: frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT}),
    Action.ESCALATE_POST: frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT}),
    Action.REASSIGN: frozenset({Role.ADMIN, Role.MANAGER}),
    Action.VIEW_QUEUE: frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT}),
    Action.VIEW_INBOX: frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT}),
    # Corrections become training labels: people who read posts all day, not marketing's trend view.
    Action.CORRECT_LABELS: frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT}),
    Action.VIEW_TRENDS: frozenset({Role.ADMIN, Role.MANAGER, Role.MARKETING}),
    # What the knowledge base says goes into replies to customers: the people who approve replies edit it.
    Action.EDIT_KNOWLEDGE: frozenset({Role.ADMIN, Role.MANAGER}),
    Action.ADMIN: frozenset({Role.ADMIN}),
    # A customer's page is personal data (every message, ratings, staff notes): for the people who answer them.
    Action.VIEW_CUSTOMER: frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT}),
    # Linking identities, tags and notes: the same people; marketing reads aggregates on Trends instead.
    Action.EDIT_CUSTOMER: frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT}),
    # A follow-up task (responder/tasks.py): done by the people who work posts; agents only their own tasks.
    Action.COMPLETE_TASK: frozenset({Role.ADMIN, Role.MANAGER, Role.AGENT}),
}

# Closing a post ends someone's work: an agent may close only the posts assigned to them (a colleague's post,
# or one nobody has taken yet, is for its owner or a manager), while managers and admins may close anything.
_OWN_POSTS_ONLY: dict[Action, frozenset[Role]] = {
    Action.DISMISS_POST: frozenset({Role.AGENT}),
    Action.ESCALATE_POST: frozenset({Role.AGENT}),
    Action.COMPLETE_TASK: frozenset({Role.AGENT}),
}


class NotAllowed(PermissionError):
    """The staff member's role does not allow the action."""


def can(staff: Staff, action: Action) -> bool:
    """Tell whether ``staff`` may perform ``action``; a role this code does not know may do nothing."""
    try:
        role = Role(staff.role)
    except ValueError:
        return False
    return role in _ALLOWED[action]


def require(staff: Staff, action: Action) -> None:
    """Raise ``NotAllowed`` unless ``staff`` may perform ``action``."""
    if not can(staff, action):
        raise NotAllowed(f"{staff.name} ({staff.role}) may not {action.value.replace('_', ' ')}")


def can_on(staff: Staff, action: Action, *, assignee_id: int | None) -> bool:
    """Tell whether ``staff`` may perform ``action`` on a post assigned to ``assignee_id`` (``None``: nobody)."""
    if not can(staff, action):
        return False
    if Role(staff.role) not in _OWN_POSTS_ONLY.get(action, frozenset()):
        return True
    return staff.id is not None and assignee_id == staff.id


def require_on(staff: Staff, action: Action, *, assignee_id: int | None) -> None:
    """Raise ``NotAllowed`` unless ``staff`` may perform ``action`` on a post assigned to ``assignee_id``."""
    require(staff, action)
    if not can_on(staff, action, assignee_id=assignee_id):
        what = action.value.replace("_", " ")
        raise NotAllowed(f"{staff.name} ({staff.role}) may {what} only posts assigned to them")
