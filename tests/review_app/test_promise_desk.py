"""The desk shows what we promised and on what basis, lets staff stop delay updates, and names the recipient."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from models.tables import Author, Post, PostKind, Reply
from responder.assign import assign_pending
from responder.care import CareOptions, care_sweep
from review_app import fmt
from review_app.i18n import t
from tests.support.desk import desk_engine, open_app
from tests.support.factories import scored_post, staff


@pytest.fixture
def app_engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The app's own engine on a fresh SQLite file."""
    yield from desk_engine(tmp_path, monkeypatch)


def test_the_promise_its_basis_and_the_stop_for_delay_updates(app_engine: Engine) -> None:
    with Session(app_engine, expire_on_commit=False) as s:
        manager = staff(s, "Mara Manager", role="manager", senior=True)
        dm = scored_post(s, kind=PostKind.DM, network="facebook", complaint=0.2, sentiment="neutral")
        comment = scored_post(s, kind=PostKind.COMMENT, network="facebook", urgency=10)
        author = s.get(Author, comment.author_id)
        assert author is not None
        author.username, author.display_name = "", "Carlos_Mx64"  # Facebook gives a name, never a handle
        s.add(author)
        assign_pending(s)
        care_sweep(s, options=CareOptions(satisfaction=False))
        s.commit()
        s.refresh(dm)
        promised = dm.promised_at
    assert promised is not None
    at = open_app(manager, lang="es")
    captions = [c.value for c in at.caption]
    promised_line = t("es", "promise_made", time=fmt.clock(promised))
    assert any(c.startswith(f":violet[{promised_line}") for c in captions), captions
    assert any("por delante" in c for c in captions)  # the basis: queue ahead, minutes per answer, margin
    at.button(key=f"updates_{dm.id}").click().run()
    with Session(app_engine) as s:
        stored = s.get(Post, dm.id)
        assert stored is not None and stored.updates_stopped is True
    assert t("es", "promise_updates_stopped") in [c.value for c in at.caption]
    # The confirm box names who gets the reply and where: never "nobody on Facebook".
    with Session(app_engine) as s:
        reply_id = s.execute(select(Reply.id).where(col(Reply.post_id) == comment.id)).scalar_one()  # type: ignore[call-overload]
    at.button(key=f"approve_{reply_id}").click().run()
    question = [m.value for m in at.markdown if "Enviar esta respuesta" in m.value]
    assert question and "Carlos\\_Mx64" in question[0] and "(comentario) en Facebook" in question[0], question
    assert t("es", "nobody") not in question[0]
