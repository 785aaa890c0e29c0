"""Threading stored posts into conversations: DMs, public threads, the brand's answers, bad input, backfill, races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import column, func, insert, select, table, text
from sqlmodel import Session, col

from ground.db import make_engine
from models.conversations import refresh_conversation
from models.schema import migrate
from models.store import save_posts
from models.tables import Author, Conversation, Post, PostStatus, Staff
from networks.base import IncomingAuthor, IncomingPost
from tests.support.db import pg_schema_url

T = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script> [x](javascript:alert(1)) **b** \u202e"


def msg(external_id: str, *, author: str | None = "cust", kind: str = "mention", minutes: int = 0,
        conversation_id: str | None = None, reply_to: str | None = None, network: str = "x",
        text_: str = "hola") -> IncomingPost:  # fmt: skip
    """One incoming post ``minutes`` after T."""
    who = IncomingAuthor(network=network, external_id=author, username=author) if author else None
    private = kind == "dm" or (kind == "own" and conversation_id is not None and conversation_id.startswith("dm"))
    return IncomingPost(
        network=network, external_id=external_id, kind=kind, source="test", text=text_,
        created_at=T + timedelta(minutes=minutes), author=who, is_public=not private,
        conversation_id=conversation_id, in_reply_to_external_id=reply_to,
    )  # fmt: skip


def conversation_of(session: Session, external_id: str) -> Conversation | None:
    post = session.execute(select(Post).where(col(Post.external_id) == external_id)).scalar_one()
    return session.get(Conversation, post.conversation_ref) if post.conversation_ref else None


def count(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(Conversation)).scalar_one())


def test_dm_messages_of_one_customer_are_one_conversation_with_the_first_message_as_clock(session: Session) -> None:
    save_posts(session, [msg("d1", kind="dm", minutes=0, conversation_id="dm-1"),
                         msg("d2", kind="dm", minutes=2, conversation_id="dm-1")])  # fmt: skip
    session.commit()
    save_posts(session, [msg("d3", kind="dm", minutes=5, conversation_id="dm-1"),
                         msg("b1", author="brand", kind="own", minutes=6, conversation_id="dm-1")])  # fmt: skip
    session.commit()
    conv = conversation_of(session, "d1")
    assert conv is not None and conv.kind == "dm" and conv.status == "open"
    assert {conversation_of(session, e).id for e in ("d2", "d3", "b1")} == {conv.id}  # type: ignore[union-attr]
    session.refresh(conv)
    assert conv.first_unanswered_at is not None and conv.first_unanswered_at.replace(tzinfo=UTC) == T
    assert conv.last_message_at.replace(tzinfo=UTC) == T + timedelta(minutes=5)
    author = session.execute(select(Author).where(col(Author.external_id) == "cust")).scalar_one()
    assert conv.author_id == author.id
    assert count(session) == 1


def test_public_threads_group_by_root_and_customer_and_the_brand_reply_joins(session: Session) -> None:
    # A customer's tweet, the brand's answer to it, the customer's follow-up in the same X conversation,
    # and a second customer who joins the thread: two conversations, the brand's answer in the first.
    save_posts(session, [msg("100", conversation_id="100"),
                         msg("101", author="brand", kind="own", reply_to="100", conversation_id="100", minutes=1),
                         msg("102", reply_to="101", conversation_id="100", minutes=2),
                         msg("103", author="other", reply_to="100", conversation_id="100", minutes=3)])  # fmt: skip
    session.commit()
    first = conversation_of(session, "100")
    assert first is not None and first.kind == "public"
    assert conversation_of(session, "101") == first and conversation_of(session, "102") == first
    second = conversation_of(session, "103")
    assert second is not None and second.id != first.id
    # Facebook: two comments of one person on a Page post are one conversation; the Page's own post is none.
    save_posts(session, [msg("P_1", author="page", kind="page_post", conversation_id="P_1", network="facebook"),
                         msg("C_1", kind="comment", conversation_id="P_1", reply_to="P_1", network="facebook"),
                         msg("C_2", kind="comment", conversation_id="P_1", reply_to="C_1", network="facebook",
                             minutes=4)])  # fmt: skip
    session.commit()
    fb = conversation_of(session, "C_1")
    assert fb is not None and fb.network == "facebook" and conversation_of(session, "C_2") == fb
    assert conversation_of(session, "P_1") is None
    assert count(session) == 3


def test_hostile_huge_and_authorless_posts_thread_by_ids_only(session: Session) -> None:
    save_posts(session, [msg("h1", text_=HOSTILE, conversation_id="h1"),
                         msg("h2", text_="x" * 40_000, reply_to="h1", conversation_id="h1", minutes=1),
                         msg("n1", author=None, conversation_id="h1", minutes=2),
                         msg("n2", author=None, conversation_id="h1", minutes=3),
                         msg("n3", author=None, kind="dm", minutes=4)])  # fmt: skip
    session.commit()
    hostile = conversation_of(session, "h1")
    assert hostile is not None and conversation_of(session, "h2") == hostile
    # Nobody can tell that two authorless posts are one person: each is a conversation of its own.
    loners = {conversation_of(session, e).id for e in ("n1", "n2", "n3")}  # type: ignore[union-attr]
    assert len(loners) == 3 and hostile.id not in loners


def test_a_closed_conversation_reopens_with_its_owner_and_a_fresh_clock(session: Session) -> None:
    manager = Staff(name="M", email="m@x", role="manager")
    session.add(manager)
    save_posts(session, [msg("d1", kind="dm")])
    session.commit()
    conv = conversation_of(session, "d1")
    assert conv is not None
    post = session.execute(select(Post).where(col(Post.external_id) == "d1")).scalar_one()
    post.status = PostStatus.REPLIED
    conv.assignee_id = manager.id
    session.add_all([post, conv])
    refresh_conversation(session, conv.id)  # type: ignore[arg-type]
    session.commit()
    session.refresh(conv)
    assert (conv.status, conv.first_unanswered_at) == ("closed", None)
    save_posts(session, [msg("d2", kind="dm", minutes=60)])
    session.commit()
    session.refresh(conv)
    assert conversation_of(session, "d2") == conv
    assert conv.status == "open" and conv.assignee_id == manager.id
    assert conv.first_unanswered_at is not None
    assert conv.first_unanswered_at.replace(tzinfo=UTC) == T + timedelta(minutes=60)


OLD_POST_COLUMNS = ("network", "external_id", "kind", "source", "author_id", "text", "is_public", "manual_only",
                    "conversation_id", "in_reply_to_external_id", "created_at", "ingested_at", "needs_response",
                    "status", "assignee_id")  # fmt: skip


def test_migration_0012_backfills_existing_posts(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate(engine, "0008")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO staff (name, email, role, languages, channels, senior, skills, capacity, "
                          "available, created_at, failed_logins, ui_language, disabled) VALUES "
                          "('Ana', 'ana@x', 'agent', 'en', 'public,dm', false, '', 5, true, :now, 0, 'en', false)"),
                     {"now": now})  # fmt: skip
        staff_id = conn.execute(text("SELECT id FROM staff")).scalar_one()
        conn.execute(text("INSERT INTO author (network, external_id, username, display_name, followers_count, "
                          "verified, updated_at) VALUES ('x', 'c1', 'c1', '', 0, false, :now)"),
                     {"now": now})  # fmt: skip
        author_id = conn.execute(text("SELECT id FROM author")).scalar_one()
        rows = [
            # external id, kind, public, conversation, reply to, author, minutes, status, assignee
            ("d1", "dm", False, "dmc", None, author_id, 0, "replied", staff_id),
            ("d2", "dm", False, "dmc", None, author_id, 5, "assigned", staff_id),
            ("d3", "dm", False, "dmc", None, author_id, 9, "assigned", staff_id),
            ("o1", "own", False, "dmc", None, None, 6, "no_action", None),
            ("t1", "mention", True, "t1", None, author_id, 1, "scored", None),
            ("t2", "mention", True, None, None, None, 2, "scored", None),
        ]
        for ext, kind, public, conv, reply_to, author, minutes, status, assignee in rows:
            conn.execute(
                # The post table as 0008 had it: the model's later columns (with Python defaults) are not there yet.
                insert(table("post", *(column(c) for c in OLD_POST_COLUMNS))).values(
                    network="x", external_id=ext, kind=kind, source="old", author_id=author, text=HOSTILE,
                    is_public=public, manual_only=False, conversation_id=conv, in_reply_to_external_id=reply_to,
                    created_at=T + timedelta(minutes=minutes), ingested_at=now, needs_response=kind != "own",
                    status=status, assignee_id=assignee,
                )
            )  # fmt: skip
    migrate(engine)
    with Session(engine) as s:
        by_ext = {p.external_id: p for p in s.execute(select(Post)).scalars()}
        dm = s.get(Conversation, by_ext["d1"].conversation_ref)
        assert dm is not None and dm.kind == "dm" and dm.status == "open" and dm.assignee_id == staff_id
        assert {by_ext[e].conversation_ref for e in ("d1", "d2", "d3", "o1")} == {dm.id}
        assert dm.first_unanswered_at is not None
        assert dm.first_unanswered_at.replace(tzinfo=UTC) == T + timedelta(minutes=5)
        public = s.get(Conversation, by_ext["t1"].conversation_ref)
        assert public is not None and public.kind == "public" and public.assignee_id is None
        assert by_ext["t2"].conversation_ref not in (None, dm.id, public.id)
        assert s.execute(select(func.count()).select_from(Conversation)).scalar_one() == 3
    engine.dispose()


def test_two_workers_storing_one_new_thread_make_one_conversation_on_postgresql() -> None:
    with pg_schema_url() as url:
        engine = make_engine(url)
        migrate(engine)
        for attempt in range(5):
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            def store(ext: str, attempt: int = attempt, barrier: threading.Barrier = barrier) -> None:
                try:
                    with Session(engine) as s:
                        barrier.wait(timeout=10)
                        save_posts(s, [msg(f"{attempt}-{ext}", author=f"c{attempt}", kind="dm", minutes=len(ext))])
                        s.commit()
                except BaseException as exc:  # reported by the main thread
                    errors.append(exc)

            workers = [threading.Thread(target=store, args=(e,)) for e in ("a", "bb")]
            for w in workers:
                w.start()
            for w in workers:
                w.join(timeout=30)
            assert not errors, errors
            with Session(engine) as s:
                refs = {
                    p.conversation_ref
                    for p in s.execute(select(Post).where(col(Post.external_id).like(f"{attempt}-%"))).scalars()
                }
                assert len(refs) == 1 and None not in refs
                conv = s.get(Conversation, refs.pop())
                assert conv is not None and conv.first_unanswered_at is not None
                assert conv.first_unanswered_at.replace(tzinfo=UTC) == T + timedelta(minutes=1)
        with Session(engine) as s:
            assert s.execute(select(func.count()).select_from(Conversation)).scalar_one() == 5
        engine.dispose()


def test_migration_0012_goes_down_and_up_again(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from models.schema import alembic_config

    engine = make_engine(db_url)
    migrate(engine)
    command.downgrade(alembic_config(engine), "0011")
    tables = set(inspect(engine).get_table_names())
    assert "conversation" not in tables and "note" not in tables
    assert "conversation_ref" not in {c["name"] for c in inspect(engine).get_columns("post")}
    migrate(engine)
    assert {"conversation", "note"} <= set(inspect(engine).get_table_names())
    engine.dispose()
