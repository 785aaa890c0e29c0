"""SQLModel tables: the one database every stage reads from and writes to.

Datetimes are timezone-aware and stored as UTC (SQLModel's ``UTCDateTime``); use ``utcnow()`` to make them.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint, false, text
from sqlmodel import Field, SQLModel

from ground.clock import now as clock_now

# The longest id a network gives a post or a reply: Instagram's message ids run to about 150 characters.
EXTERNAL_ID_MAX = 255


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC (``ground.clock``: a simulation may have moved it)."""
    return clock_now()


class PostKind(enum.StrEnum):
    """What a post is on its network; decides channel and how it can be answered."""

    MENTION = "mention"
    SEARCH = "search"
    COMMENT = "comment"
    PAGE_POST = "page_post"
    VISITOR_POST = "visitor_post"
    DM = "dm"
    OWN = "own"
    SHARE = "share"


class PostStatus(enum.StrEnum):
    """Where a post is in the pipeline; terminal states are replied, dismissed, escalated, no_action."""

    NEW = "new"
    SCORED = "scored"
    ASSIGNED = "assigned"
    REPLIED = "replied"
    DISMISSED = "dismissed"
    ESCALATED = "escalated"
    NO_ACTION = "no_action"


class Role(enum.StrEnum):
    """A staff member's role; decides what they may do."""

    ADMIN = "admin"
    MANAGER = "manager"
    AGENT = "agent"
    MARKETING = "marketing"


class ReplyState(enum.StrEnum):
    """The life of a reply: suggested | draft → pending_approval → approved → sending → sent | failed.

    ``suggested`` is a machine draft nobody has touched; ``pending_approval`` only ever holds a person's
    submission (``Reply.submitted_by_id``), so the approval list never mixes the two.
    """

    SUGGESTED = "suggested"
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    REJECTED = "rejected"


# Answers nobody has approved yet: a person may still edit, submit or approve them.
UNAPPROVED = (ReplyState.SUGGESTED, ReplyState.DRAFT, ReplyState.PENDING_APPROVAL)


class Author(SQLModel, table=True):
    """Someone who posted on a network, as that network describes them."""

    __table_args__ = (UniqueConstraint("network", "external_id", name="uq_author_network_external"),)

    id: int | None = Field(default=None, primary_key=True)
    network: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    username: str = Field(default="", max_length=255)
    display_name: str = Field(default="", max_length=255)
    followers_count: int = 0
    verified: bool = False
    # When the profile above last changed (an unchanged author is not rewritten: see models.store).
    updated_at: datetime = Field(default_factory=utcnow)
    # The person behind this network identity (models.customers); identities linked by staff share one.
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)


class Post(SQLModel, table=True):
    """One public post, comment or direct message, unique by (network, external_id)."""

    __table_args__ = (
        UniqueConstraint("network", "external_id", name="uq_post_network_external"),
        Index("ix_post_status_created", "status", "created_at"),
        # Replies waiting for their parent: thread linking after every stored page probes it by value.
        Index(
            "ix_post_unlinked_reply",
            "in_reply_to_external_id",
            postgresql_where=text("parent_id IS NULL"),
            sqlite_where=text("parent_id IS NULL"),
        ),
        Index("ix_post_conversation_created", "conversation_ref", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    network: str = Field(max_length=16, index=True)
    external_id: str = Field(max_length=EXTERNAL_ID_MAX)
    kind: str = Field(max_length=16, index=True)
    source: str = Field(max_length=32)
    author_id: int | None = Field(default=None, foreign_key="author.id", index=True)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    lang: str | None = Field(default=None, max_length=16)
    is_public: bool = True
    # Keyword hits that neither mention nor quote the brand may only be answered by hand (X rule, 2026).
    manual_only: bool = False
    conversation_id: str | None = Field(default=None, max_length=128)
    in_reply_to_external_id: str | None = Field(default=None, max_length=128)
    parent_id: int | None = Field(default=None, foreign_key="post.id")
    url: str | None = Field(default=None, max_length=1024)
    created_at: datetime = Field(index=True)
    ingested_at: datetime = Field(default_factory=utcnow)
    needs_response: bool | None = Field(default=None, index=True)
    status: str = Field(default=PostStatus.NEW, max_length=16)
    # SLA clock (from the post's own time) and what the customer was promised; set by the responder.
    due_at: datetime | None = Field(default=None, index=True)
    promised_at: datetime | None = None
    # How that promise was worked out (responder.forecast: queue ahead, handling time, margin, shifts, floor).
    promise_basis: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # Staff stopped the automatic delay updates of this post (they write to the customer themselves).
    updates_stopped: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # When nobody could take the post: it waits, visibly, in the holding queue until someone can.
    held_since: datetime | None = Field(default=None, index=True)
    escalated_at: datetime | None = None
    assignee_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    urgency: int | None = Field(default=None, index=True)
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=64)
    resolution_note: str | None = Field(default=None, max_length=1024)
    raw: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # The conversation the post belongs to (models.conversations threads it when it is stored); indexed with the
    # time below (``ix_post_conversation_created``), so a conversation's newest messages are one index range.
    conversation_ref: int | None = Field(default=None, foreign_key="conversation.id")


class ConversationKind(enum.StrEnum):
    """What kind of thread a conversation is."""

    DM = "dm"
    PUBLIC = "public"


class ConversationStatus(enum.StrEnum):
    """Whether a conversation still has a message waiting for us."""

    OPEN = "open"
    CLOSED = "closed"


class Conversation(SQLModel, table=True):
    """The unit staff work on: one DM thread, or one customer's part of a public thread, with one owner.

    Unique by (network, thread_key), so two workers storing messages of one new thread upsert one row.
    """

    __table_args__ = (
        UniqueConstraint("network", "thread_key", name="uq_conversation_network_thread"),
        Index("ix_conversation_status_last", "status", "last_message_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    network: str = Field(max_length=16)
    kind: str = Field(default=ConversationKind.PUBLIC, max_length=16)
    # "dm:<customer>" or "pub:<root post>:<customer>" (models.conversations.thread_key says how).
    thread_key: str = Field(max_length=300)
    # The customer (the author the thread is with); None when the network did not say who wrote.
    author_id: int | None = Field(default=None, foreign_key="author.id", index=True)
    assignee_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    status: str = Field(default=ConversationStatus.OPEN, max_length=16)
    # The SLA clock: the oldest customer message nobody has answered yet (None when all are answered).
    first_unanswered_at: datetime | None = None
    last_message_at: datetime
    created_at: datetime = Field(default_factory=utcnow)


class Note(SQLModel, table=True):
    """An internal note on a conversation: written by staff, read by staff, never sent to any network."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversation.id", index=True)
    staff_id: int = Field(foreign_key="staff.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Score(SQLModel, table=True):
    """The classifier's view of a post: sentiment, complaint, urgency and the reasons in words."""

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", unique=True)
    sentiment: str = Field(max_length=16)
    p_negative: float
    p_neutral: float
    p_positive: float
    complaint: float
    urgency: int
    crisis: bool = False
    language: str = Field(max_length=8)
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    model_id: str = Field(max_length=128)
    scored_at: datetime = Field(default_factory=utcnow)


class Staff(SQLModel, table=True):
    """A person on the team: who they are, what they may do and how much they can take."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=255)
    email: str = Field(max_length=255, unique=True)
    role: str = Field(default=Role.AGENT, max_length=16)
    # Comma-separated codes keep the schema portable; see responder.policy for parsing.
    languages: str = Field(default="en", max_length=64)
    channels: str = Field(default="public,dm", max_length=64)
    senior: bool = False
    # Comma-separated skill codes (e.g. "billing,legal"); a post may require some of them.
    skills: str = Field(default="", max_length=255)
    capacity: int = Field(default=20, ge=0)
    available: bool = True
    last_assigned_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # Sign-in: an argon2 hash only (never the password); None means the person cannot sign in yet.
    password_hash: str | None = Field(default=None, max_length=255)
    failed_logins: int = 0
    locked_until: datetime | None = None
    # The review desk's interface language for this person ("es" or "en").
    ui_language: str = Field(default="es", max_length=8)
    # A disabled person cannot sign in, and every desk session of theirs ends at once (models.sessions).
    disabled: bool = False


class Assignment(SQLModel, table=True):
    """Who owned a post and when; the history behind ``Post.assignee_id``."""

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    assigned_at: datetime = Field(default_factory=utcnow)
    ended_at: datetime | None = None
    performed_by: str = Field(max_length=64)
    reason: str = Field(default="", max_length=255)


class ReplyKind(enum.StrEnum):
    """Why a reply is sent: the answer itself, or one of the automatic messages around it."""

    ANSWER = "answer"
    ACK = "ack"
    UPDATE = "update"
    SURVEY = "survey"


ANSWER_IN_FLIGHT = "kind = 'answer' AND state IN ('approved', 'sending', 'sent')"


class Reply(SQLModel, table=True):
    """A reply to a post and its way through approval to the network (the outbox row)."""

    __table_args__ = (
        # "Is this post's answer approved, going out or out?": the SLA and care sweeps ask it of every open post.
        Index(
            "ix_reply_answer_in_flight",
            "post_id",
            postgresql_where=text(ANSWER_IN_FLIGHT),
            sqlite_where=text(ANSWER_IN_FLIGHT),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    kind: str = Field(default=ReplyKind.ANSWER, max_length=16)
    state: str = Field(default=ReplyState.DRAFT, max_length=20, index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    suggested_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    idempotency_key: str = Field(max_length=64, unique=True)
    author_staff_id: int | None = Field(default=None, foreign_key="staff.id")
    # Who submitted it for approval and when (None: nobody did; a machine suggestion approved as it was).
    submitted_by_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    submitted_at: datetime | None = None
    approved_by_id: int | None = Field(default=None, foreign_key="staff.id")
    approved_at: datetime | None = None
    external_id: str | None = Field(default=None, max_length=EXTERNAL_ID_MAX)
    url: str | None = Field(default=None, max_length=1024)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=1024)
    note: str | None = Field(default=None, max_length=1024)
    model_id: str | None = Field(default=None, max_length=128)
    # Set when another open answer exists for the same post, so a person resolves the duplicate.
    flag: str | None = Field(default=None, max_length=255)
    # A public comment answered in the commenter's inbox instead (a network's private reply, sent once).
    private: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # Backoff: the outbox leaves a reply alone until then after a temporary failure.
    next_attempt_at: datetime | None = None
    # The time this reply promises the customer an answer by (acknowledgements, updates, suggested answers).
    promised_at: datetime | None = None
    # Scores, model version, suggested draft, diff to what was sent, approver: kept when it is sent.
    provenance: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class SourceCursor(SQLModel, table=True):
    """Where each listener source stopped, and its health; saved with the posts it covers."""

    __table_args__ = (UniqueConstraint("network", "source", name="uq_cursor_network_source"),)

    id: int | None = Field(default=None, primary_key=True)
    network: str = Field(max_length=16)
    source: str = Field(max_length=32)
    cursor: str | None = Field(default=None, max_length=255)
    # Ids already seen, for sources without since_id (DM events); bounded by the listener.
    seen_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    healthy: bool = True
    last_success_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=1024)
    last_error_at: datetime | None = None
    next_run_at: datetime | None = None
    posts_ingested: int = 0
    requests_made: int = 0
    # A paged fetch in progress (page token, since_id it started from, newest id to adopt at the end),
    # committed with each page so a crash resumes where it stopped instead of skipping the gap.
    paging: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The last rate-limit headers per endpoint: {path: {"limit", "remaining", "reset"}}.
    rate_limits: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Reads this calendar month (UTC, "YYYY-MM"), for the monthly read budget.
    budget_month: str = Field(default="", max_length=7)
    month_posts_read: int = 0
    month_requests: int = 0
    # Why polling is slowed down (budget) or paused, shown by `escucha status`; None when at full pace.
    throttled: str | None = Field(default=None, max_length=255)


class WatchedPost(SQLModel, table=True):
    """A post whose replies a listener still reads on every poll, with its own cursor into them.

    Written in the same transaction as the posts a page brought, so a crash loses neither; a post leaves
    when its listener says its activity window has ended.
    """

    __tablename__ = "watched_post"
    __table_args__ = (UniqueConstraint("network", "post_external_id", name="uq_watched_post_network_post"),)

    id: int | None = Field(default=None, primary_key=True)
    network: str = Field(max_length=16)
    post_external_id: str = Field(max_length=128)
    # The newest activity seen on the post (its own time, its updated time, its newest reply).
    last_activity_at: datetime
    # Where reading its replies goes on from, in the network's terms (Graph: a unix time for ``since``).
    comments_cursor: str | None = Field(default=None, max_length=255)
    # The listener run that last read it, so a resumed run reads each watched post once.
    read_in_run: str | None = Field(default=None, max_length=64)


class AuditEvent(SQLModel, table=True):
    """Something that happened and who did it: assignments, approvals, sends, breaches."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(max_length=64)
    action: str = Field(max_length=64, index=True)
    post_id: int | None = Field(default=None, foreign_key="post.id", index=True)
    reply_id: int | None = Field(default=None, foreign_key="reply.id")
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Sign-in attempts only: a hash of the client's address, so the throttle can count per address.
    client: str | None = Field(default=None, max_length=64, index=True)


class Shift(SQLModel, table=True):
    """A weekly working window of one staff member; someone with no shifts is always on shift."""

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    weekday: int = Field(ge=0, le=6)  # Monday is 0, as in ``datetime.weekday()``
    start_minute: int = Field(ge=0, le=1440)
    # An end at or before the start runs past midnight into the next day.
    end_minute: int = Field(ge=0, le=1440)
    timezone: str = Field(default="UTC", max_length=64)


class SlaPolicy(SQLModel, table=True):
    """A first-response target for one channel (public, dm) and lane (crisis, complaint, other)."""

    __table_args__ = (UniqueConstraint("channel", "lane", name="uq_sla_policy_channel_lane"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=16)
    lane: str = Field(max_length=16)
    seconds: int = Field(gt=0)
    business_hours: bool = False


class BusinessHours(SQLModel, table=True):
    """An opening window of the support desk, for SLA policies that count business hours only."""

    id: int | None = Field(default=None, primary_key=True)
    weekday: int = Field(ge=0, le=6)
    start_minute: int = Field(ge=0, le=1440)
    end_minute: int = Field(ge=0, le=1440)
    timezone: str = Field(default="UTC", max_length=64)


class SlaEvent(SQLModel, table=True):
    """Something that happened to a post's SLA clock: a breach, a predicted breach, a slipped promise."""

    __table_args__ = (UniqueConstraint("post_id", "kind", "due_at", name="uq_sla_event_post_kind_due"),)

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    kind: str = Field(max_length=32, index=True)
    due_at: datetime
    at: datetime = Field(default_factory=utcnow)
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Alert(SQLModel, table=True):
    """A message to one staff member (a manager, a senior): post on hold, SLA breached, escalation."""

    id: int | None = Field(default=None, primary_key=True)
    # One alert per (what, post, person): sweeps run every few seconds and must not repeat themselves.
    key: str = Field(max_length=128, unique=True)
    kind: str = Field(max_length=32, index=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    post_id: int | None = Field(default=None, foreign_key="post.id", index=True)
    message: str = Field(default="", max_length=1024)
    created_at: datetime = Field(default_factory=utcnow)
    read_at: datetime | None = None
    # The team-chat webhook (responder.notify): when it took the alert, and how many pushes failed before.
    pushed_at: datetime | None = None
    push_attempts: int = 0


class SavedReply(SQLModel, table=True):
    """An editable reply template chosen by the post's type, tone, language and network."""

    __table_args__ = (UniqueConstraint("language", "reply_type", "tone", "network", name="uq_saved_reply_choice"),)

    id: int | None = Field(default=None, primary_key=True)
    language: str = Field(max_length=8)
    reply_type: str = Field(max_length=16)  # crisis, complaint, question, praise, other; ack, update, survey
    tone: str = Field(default="any", max_length=16)  # upset, calm or any
    network: str = Field(default="any", max_length=16)
    text: str = Field(sa_column=Column(Text, nullable=False))
    active: bool = True
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = Field(default=None, max_length=64)


class Satisfaction(SQLModel, table=True):
    """A satisfaction question sent after a post was answered (1–5, or 0–10 for the promoter question) and the
    customer's answer with their optional comment."""

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", unique=True)
    reply_id: int | None = Field(default=None, foreign_key="reply.id")
    asked_at: datetime = Field(default_factory=utcnow)
    # 5: satisfaction from 1 to 5; 10: the promoter question, from 0 to 10.
    scale: int = Field(default=5, sa_column_kwargs={"server_default": "5"})
    score: int | None = Field(default=None, ge=0, le=10)
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    answered_at: datetime | None = None
    answer_post_id: int | None = Field(default=None, foreign_key="post.id")


class Presence(SQLModel, table=True):
    """A heartbeat: who has a post open in the desk, and whether they are viewing or editing its reply."""

    __table_args__ = (UniqueConstraint("staff_id", "post_id", name="uq_presence_staff_post"),)

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id")
    post_id: int = Field(foreign_key="post.id", index=True)
    mode: str = Field(default="viewing", max_length=16)  # viewing or editing
    seen_at: datetime = Field(default_factory=utcnow, index=True)


class Correction(SQLModel, table=True):
    """A person's correction of the classifier (sentiment, urgency, needs a reply), kept as a training label."""

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    staff_id: int = Field(foreign_key="staff.id")
    field: str = Field(max_length=32)  # sentiment, urgency or needs_response
    old_value: str | None = Field(default=None, max_length=64)
    new_value: str = Field(max_length=64)
    model_id: str | None = Field(default=None, max_length=128)
    at: datetime = Field(default_factory=utcnow, index=True)


class WebhookDelivery(SQLModel, table=True):
    """One verified webhook delivery, logged in the transaction that stored its posts (a redelivery is a no-op)."""

    __table_args__ = (UniqueConstraint("network", "delivery_id", name="uq_webhook_delivery_network_id"),)

    id: int | None = Field(default=None, primary_key=True)
    network: str = Field(max_length=16)
    # The network sends no delivery id: the SHA-256 of the signed body stands for it (same bytes, same delivery).
    delivery_id: str = Field(max_length=64)
    received_at: datetime = Field(default_factory=utcnow, index=True)
    # The newest event time the delivery carries (for the replay window and the latency report).
    sent_at: datetime | None = None
    posts: int = 0
    inserted: int = 0


class DeskSession(SQLModel, table=True):
    """One signed-in browser: the server-side record its HttpOnly cookie is bound to (``models.sessions``).

    Only hashes of the secrets are stored, so a copy of the database signs no one in. The cookie exists only
    after the browser exchanged the one-time ``handoff`` for it; ``revoked_at`` ends it for good.
    """

    __tablename__ = "desk_session"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    token_hash: str | None = Field(default=None, max_length=64, unique=True)
    handoff_hash: str | None = Field(default=None, max_length=64, unique=True)
    handoff_until: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    revoked_at: datetime | None = None


class DeskKey(SQLModel, table=True):
    """The key that signs desk session cookies when ``ESCUCHA_SESSION_SECRET`` is not set: made once per database."""

    __tablename__ = "desk_key"

    id: int = Field(default=1, primary_key=True)
    secret: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow)


# --- customers: one person across networks (issue 13) ---


class Customer(SQLModel, table=True):
    """One person, whatever networks they write from; each ``Author`` (a network identity) belongs to one."""

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)


class CustomerLink(SQLModel, table=True):
    """The audit of identity links: who moved which identity from which customer to which, and why."""

    __tablename__ = "customer_link"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    action: str = Field(max_length=16)  # link or unlink
    author_id: int = Field(foreign_key="author.id", index=True)
    from_customer_id: int = Field(foreign_key="customer.id")
    to_customer_id: int = Field(foreign_key="customer.id")
    staff_id: int = Field(foreign_key="staff.id")
    # What the person saw when they clicked: the suggestion's evidence ("same name", "order #5521"), if any.
    basis: str = Field(default="", max_length=255)


class CustomerTag(SQLModel, table=True):
    """A label staff put on a customer ("VIP", "reported a safety issue")."""

    __tablename__ = "customer_tag"
    __table_args__ = (UniqueConstraint("customer_id", "tag", name="uq_customer_tag"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    tag: str = Field(max_length=64)
    staff_id: int = Field(foreign_key="staff.id")
    at: datetime = Field(default_factory=utcnow)


class CustomerNote(SQLModel, table=True):
    """A note staff wrote about a customer; internal, never sent to any network."""

    __tablename__ = "customer_note"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    staff_id: int = Field(foreign_key="staff.id")
    text: str = Field(sa_column=Column(Text, nullable=False))
    at: datetime = Field(default_factory=utcnow)


class PostEmbedding(SQLModel, table=True):
    """A post's sentence vector (float16 bytes), kept so the trends page groups posts without re-encoding them.

    ``model_id`` names the encoder: a vector from another encoder is not comparable and is made again.
    """

    __tablename__ = "post_embedding"

    post_id: int = Field(foreign_key="post.id", primary_key=True)
    model_id: str = Field(max_length=128)
    dims: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    made_at: datetime = Field(default_factory=utcnow)


class DeskSetting(SQLModel, table=True):
    """One team-wide setting an admin changes from the desk (e.g. ``overflow_policy``), as text."""

    __tablename__ = "desk_setting"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=255)
    updated_at: datetime = Field(default_factory=utcnow)
    updated_by: str | None = Field(default=None, max_length=64)


class Task(SQLModel, table=True):
    """A follow-up for one person, made from a post the desk closed as handled by it (a keyword hit).

    Open while ``done_at`` is empty; marking it done records who and when. ``post_id`` keeps the link to the post.
    """

    id: int | None = Field(default=None, primary_key=True)
    post_id: int = Field(foreign_key="post.id", index=True)
    assignee_id: int = Field(foreign_key="staff.id", index=True)
    created_by_id: int = Field(foreign_key="staff.id")
    note: str = Field(default="", max_length=1024)
    due_at: datetime
    created_at: datetime = Field(default_factory=utcnow)
    done_at: datetime | None = None
    done_by_id: int | None = Field(default=None, foreign_key="staff.id")


# --- learning from corrections: head versions and refit attempts (issue 16) ---


class HeadsVersion(SQLModel, table=True):
    """Complaint and sentiment heads refitted on staff corrections, on top of one base model.

    ``weights`` holds the heads as safetensors bytes (a few kB); every worker's scorer applies the active row.
    Earlier rows stay, so an admin (or the refit job, when a later check is worse) can go back to one.
    """

    __tablename__ = "heads_version"

    id: int | None = Field(default=None, primary_key=True)
    base_model: str = Field(max_length=96, index=True)
    weights: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    temperatures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    active: bool = Field(default=False, index=True)
    # The version that was active when this one was promoted: what a rollback goes back to (None: the base heads).
    previous_id: int | None = Field(default=None, foreign_key="heads_version.id")
    n_corrections: int = 0
    # The newest correction this version learnt from: corrections after it were never trained on.
    last_correction_id: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None


class RefitAttempt(SQLModel, table=True):
    """One run of the refit job (or an admin's rollback): when, on how many corrections, the figures, the outcome."""

    __tablename__ = "refit_attempt"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = Field(default_factory=utcnow, index=True)
    finished_at: datetime | None = None
    actor: str = Field(default="worker", max_length=64)
    # promoted, kept (the new heads were worse), rolled_back, skipped (with the reason) or failed.
    outcome: str = Field(max_length=16)
    reason: str = Field(default="", max_length=512)
    base_model: str = Field(max_length=96)
    n_corrections: int = 0
    new_corrections: int = 0
    last_correction_id: int = 0
    old_model_id: str = Field(default="", max_length=128)
    new_model_id: str = Field(default="", max_length=128)
    figures: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    heads_version_id: int | None = Field(default=None, foreign_key="heads_version.id")
