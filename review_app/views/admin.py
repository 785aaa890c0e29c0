"""Admin: staff (role, capacity, languages, channels, availability, shifts), SLA policies, the overflow policy,
the satisfaction question, saved replies, brand keywords and each source's health and API budget. Every change
is a call into ``responder``."""

from __future__ import annotations

import streamlit as st
from sqlalchemy import select
from sqlmodel import Session, col

from ground.settings import get_settings
from models.heads import NothingToRollBack
from models.staff import list_staff
from models.tables import Role, SavedReply, Shift, SlaPolicy
from networks.registry import NETWORKS
from responder.admin import CHANNELS, LANES, add_shift, remove_shift, save_reply_text, set_sla_policy, update_staff
from responder.model_admin import model_view, rollback_heads
from responder.overflow import POLICIES, overflow_policy, set_overflow_policy
from responder.permissions import Action, NotAllowed
from responder.promoter import PROMOTER_KEY, promoter_chosen, promoter_mode, set_promoter_mode
from responder.status import collect_status
from review_app import context, fmt
from review_app.i18n import t
from review_app.labels import code, formatter
from review_app.safe import md, plain
from review_app.views.overview import sources_frame


def _save_staff(staff_id: int) -> None:
    s = st.session_state
    context.save_as_me(
        lambda session, me: update_staff(
            session,
            actor=me,
            staff_id=staff_id,
            role=str(s[f"role_{staff_id}"]),
            capacity=int(s[f"capacity_{staff_id}"]),
            languages=str(s[f"languages_{staff_id}"]),
            channels=str(s[f"channels_{staff_id}"]),
            available=bool(s[f"available_{staff_id}"]),
        )
    )


def _add_shift(staff_id: int) -> None:
    s = st.session_state
    context.save_as_me(
        lambda session, me: add_shift(
            session,
            actor=me,
            staff_id=staff_id,
            weekday=int(s[f"shift_day_{staff_id}"]),
            start_minute=int(s[f"shift_start_{staff_id}"]),
            end_minute=int(s[f"shift_end_{staff_id}"]),
            timezone=str(s[f"shift_tz_{staff_id}"]),
        )
    )


def _remove_shift(shift_id: int) -> None:
    context.save_as_me(lambda session, me: remove_shift(session, actor=me, shift_id=shift_id))


def _save_sla() -> None:
    s = st.session_state
    context.save_as_me(
        lambda session, me: set_sla_policy(
            session,
            actor=me,
            channel=str(s["sla_channel"]),
            lane=str(s["sla_lane"]),
            seconds=int(s["sla_seconds"]),
            business_hours=bool(s["sla_business"]),
        )
    )


def _save_saved_reply() -> None:
    s = st.session_state
    rid = int(s["saved_pick"])
    context.save_as_me(
        lambda session, me: save_reply_text(session, actor=me, saved_reply_id=rid, text=str(s[f"saved_text_{rid}"]))
    )


def _staff_section(lang: str, session: Session) -> None:
    st.subheader(t(lang, "admin_staff"))
    roles = [r.value for r in Role]
    shifts: dict[int, list[Shift]] = {}
    for shift in session.execute(select(Shift).order_by(col(Shift.weekday), col(Shift.start_minute))).scalars():
        shifts.setdefault(shift.staff_id, []).append(shift)
    for member in list_staff(session):
        sid = member.id
        assert sid is not None
        title = f"{md(member.name)} · {code(lang, 'role', member.role)} · {md(member.email)}"
        with st.expander(title):
            a, b, c, d, e = st.columns([2, 1, 2, 2, 1])
            # A role this version does not know (an old row) shows blank, so the admin picks one, not the page crash.
            known = roles.index(member.role) if member.role in roles else None
            a.selectbox(
                t(lang, "admin_role"),
                roles,
                index=known,
                format_func=formatter(lang, "role"),
                placeholder=t(lang, "choose_option"),
                key=f"role_{sid}",
            )
            b.number_input(
                t(lang, "admin_capacity"), min_value=0, max_value=500, value=member.capacity, key=f"capacity_{sid}"
            )
            c.text_input(t(lang, "admin_languages"), value=member.languages, key=f"languages_{sid}")
            d.text_input(t(lang, "admin_channels"), value=member.channels, key=f"channels_{sid}")
            e.checkbox(t(lang, "admin_available"), value=member.available, key=f"available_{sid}")
            st.button(t(lang, "admin_save"), key=f"save_staff_{sid}", on_click=_save_staff, args=(sid,))
            st.caption(t(lang, "admin_shifts"))
            for shift in shifts.get(sid, []):
                line, drop = st.columns([4, 1])
                line.text(
                    f"{code(lang, 'weekday', str(shift.weekday))} · "
                    f"{shift.start_minute // 60:02d}:{shift.start_minute % 60:02d}"
                    f"–{shift.end_minute // 60:02d}:{shift.end_minute % 60:02d} {plain(shift.timezone)}"
                )
                drop.button("✕", key=f"drop_shift_{shift.id}", on_click=_remove_shift, args=(shift.id,))
            if not shifts.get(sid):
                st.caption(t(lang, "admin_no_shifts"))
            f, g, h, i = st.columns(4)
            f.number_input(t(lang, "admin_weekday"), 0, 6, 0, key=f"shift_day_{sid}")
            g.number_input(t(lang, "admin_start"), 0, 1440, 9 * 60, step=30, key=f"shift_start_{sid}")
            h.number_input(t(lang, "admin_end"), 0, 1440, 17 * 60, step=30, key=f"shift_end_{sid}")
            i.text_input(t(lang, "admin_timezone"), value="UTC", key=f"shift_tz_{sid}")
            st.button(t(lang, "admin_add_shift"), key=f"add_shift_{sid}", on_click=_add_shift, args=(sid,))


def _sla_section(lang: str, session: Session) -> None:
    st.subheader(t(lang, "admin_sla"))
    policies = list(session.execute(select(SlaPolicy).order_by(col(SlaPolicy.channel), col(SlaPolicy.lane))).scalars())
    if policies:
        column = {name: code(lang, "column", name) for name in ("channel", "lane", "seconds", "business_hours")}
        st.dataframe(
            [{column["channel"]: code(lang, "channel", p.channel), column["lane"]: code(lang, "lane", p.lane),
              column["seconds"]: p.seconds, column["business_hours"]: p.business_hours} for p in policies],
            hide_index=True,
        )  # fmt: skip
    a, b, c, d = st.columns(4)
    a.selectbox(t(lang, "admin_channel"), CHANNELS, format_func=formatter(lang, "channel"), key="sla_channel")
    b.selectbox(t(lang, "admin_lane"), LANES, format_func=formatter(lang, "lane"), key="sla_lane")
    c.number_input(t(lang, "admin_seconds"), min_value=60, max_value=7 * 86400, value=3600, step=300, key="sla_seconds")
    d.checkbox(t(lang, "admin_business_hours"), key="sla_business")
    st.button(t(lang, "admin_sla_save"), key="save_sla", on_click=_save_sla)


OVERFLOW_KEY = "overflow_policy"


def _save_overflow() -> None:
    policy = str(st.session_state.get(OVERFLOW_KEY, ""))
    context.save_as_me(lambda session, me: set_overflow_policy(session, actor=me, policy=policy))


def _overflow_section(lang: str, session: Session) -> None:
    """What the assignment sweep does with new posts when the whole team is at capacity."""
    current = overflow_policy(session)
    left, right = st.columns([3, 1])
    left.selectbox(t(lang, "admin_overflow"), POLICIES, index=POLICIES.index(current),
                   format_func=formatter(lang, "overflow"), key=OVERFLOW_KEY)  # fmt: skip
    right.button(t(lang, "admin_overflow_save"), key="save_overflow", on_click=_save_overflow)


def _save_promoter() -> None:
    on = bool(st.session_state.get(PROMOTER_KEY, False))
    context.save_as_me(lambda session, me: set_promoter_mode(session, actor=me, on=on))


def _promoter_section(lang: str, session: Session) -> None:
    """Which satisfaction question the care sweep sends: the 1–5 one or the promoter one (0–10)."""
    st.subheader(t(lang, "admin_survey"))
    on = promoter_mode(session, default=get_settings().satisfaction_promoter)
    left, right = st.columns([3, 1])
    left.toggle(t(lang, "admin_promoter"), value=on, key=PROMOTER_KEY, help=t(lang, "admin_promoter_help"))
    right.button(t(lang, "admin_promoter_save"), key="save_promoter", on_click=_save_promoter)
    st.caption(t(lang, "admin_promoter_now_promoter" if on else "admin_promoter_now_survey"))
    if not promoter_chosen(session):
        st.caption(t(lang, "admin_promoter_from_env", variable="ESCUCHA_SATISFACTION_PROMOTER"))


def _saved_section(lang: str, session: Session) -> None:
    st.subheader(t(lang, "admin_saved"))
    rows = {r.id: r for r in session.execute(select(SavedReply).order_by(col(SavedReply.id))).scalars()}
    if not rows:
        return
    pick = st.selectbox(
        t(lang, "admin_saved_pick"),
        list(rows),
        format_func=lambda rid: " · ".join(
            (
                code(lang, "language", rows[rid].language),
                code(lang, "reply_type", rows[rid].reply_type),
                code(lang, "tone", rows[rid].tone),
                fmt.network(rows[rid].network) if rows[rid].network != "any" else code(lang, "language", "any"),
            )
        ),
        key="saved_pick",
    )
    chosen = rows[pick]
    st.text_area(t(lang, "admin_saved_text"), value=chosen.text, key=f"saved_text_{pick}")
    st.button(t(lang, "admin_saved_save"), key="save_saved", on_click=_save_saved_reply)


def _sources_section(lang: str, session: Session) -> None:
    settings = get_settings()
    st.subheader(t(lang, "admin_keywords"))
    st.dataframe(
        [
            {code(lang, "column", "setting"): code(lang, "setting", name), code(lang, "column", "value"): plain(value)}
            for spec in NETWORKS.values()
            for name, value in spec.settings_of(settings).identity().items()
        ],
        hide_index=True,
    )
    st.caption(t(lang, "admin_keywords_help"))
    st.subheader(t(lang, "admin_sources"))
    status = collect_status(session, settings)
    if status["sources"]:
        st.dataframe(sources_frame(status["sources"], lang), hide_index=True, width="stretch")
    else:
        st.caption(t(lang, "no_sources"))
    if status.get("read_budget"):
        # A table rather than raw JSON: its column names are words in the page's language.
        budget = [
            {code(lang, "column", "network"): fmt.network(name)}
            | {code(lang, "column", key): value for key, value in row.items()}
            for name, row in status["read_budget"].items()
        ]
        st.dataframe(budget, hide_index=True, width="stretch")


def _rollback(base: str) -> None:
    """Go back to the heads before the active version of ``base`` (the button's callback)."""
    lang = context.lang()
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.acting_staff(session)
        if me is None:
            return
        try:
            attempt = rollback_heads(session, actor=me, base=base)
        except NotAllowed as exc:
            context.flash("error", t(lang, "msg_not_allowed", detail=md(str(exc))))
        except NothingToRollBack:
            context.flash("info", t(lang, "admin_model_nothing"))
        else:
            context.flash("success", t(lang, "admin_model_rollback_done", model=md(attempt.new_model_id)))


def _model_section(lang: str, session: Session) -> None:
    """The model scoring now, the refit job's attempts, and a way back to the previous heads."""
    st.subheader(t(lang, "admin_model"))
    view = model_view(session)
    if not view.current:
        st.caption(t(lang, "admin_model_none"))
    for base, model in view.current.items():
        left, right = st.columns([3, 1])
        left.markdown(t(lang, "admin_model_now", model=md(model), latest=md(view.latest_scored or "-")))
        right.button(t(lang, "admin_model_rollback"), key=f"heads_rollback_{base}", on_click=_rollback,
                     args=(base,), disabled=model == base)  # fmt: skip
    st.caption(t(lang, "admin_model_help"))
    st.markdown(f"**{t(lang, 'admin_model_attempts')}**")
    if not view.attempts:
        st.caption(t(lang, "admin_model_no_attempts"))
        return
    st.dataframe(
        [
            {
                code(lang, "column", "refit_at"): a.started_at.strftime("%Y-%m-%d ") + fmt.clock(a.started_at),
                code(lang, "column", "refit_by"): plain(code(lang, "refit_actor", a.actor)),
                code(lang, "column", "refit_outcome"): code(lang, "refit_outcome", a.outcome),
                code(lang, "column", "refit_corrections"): a.n_corrections,
                code(lang, "column", "refit_old"): a.figures.get("old", {}).get("log_loss"),
                code(lang, "column", "refit_new"): a.figures.get("new", {}).get("log_loss"),
                code(lang, "column", "refit_model"): plain(a.new_model_id or a.old_model_id),
            }
            for a in view.attempts
        ],
        hide_index=True,
        width="stretch",
    )


def render() -> None:
    """Render the admin page."""
    lang = context.lang()
    st.title(t(lang, "admin_title"))
    context.show_flashes()
    with Session(context.engine(), expire_on_commit=False) as session:
        me = context.allowed_staff(session, lang, action=Action.ADMIN, refused="admin_not_allowed")
        if me is None:
            return
        _staff_section(lang, session)
        _sla_section(lang, session)
        _overflow_section(lang, session)
        _promoter_section(lang, session)
        _saved_section(lang, session)
        _sources_section(lang, session)
        _model_section(lang, session)


if __name__ == "__main__":
    render()
