"""History: the member's ledger, newest first, filterable by category, each line with why it
earned (or cost) what it did; above it, the activities of the last 90 days that are waiting
for confirmation, were refused, or earned nothing, each open to an appeal.

The ledger is paged by keyset: ``before`` is the id of the last line shown, and the next page
reads backwards along the ledger's unique (member_id, seq) index from that line's seq, so a
page costs the same however long the ledger is.
"""

from __future__ import annotations

import datetime as dt

from flask import abort, render_template, request
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import load_only

from ...engine import RuleSet
from ...engine.explain import CapNote, Explanation, render
from ...extensions import db
from ...models import Event, EventStatus, LedgerEntry
from ...models.base import utcnow
from ...services.rules import current_rules
from .. import bp, i18n
from ..auth import current_member, member_required

PAGE = 20
ATTENTION_DAYS = 90
ATTENTION_LIMIT = 20
CATEGORIES = ("pioneer", "governance", "volunteer", "other")
MAX_ID = 2**63 - 1  # ids past BIGINT are nobody's (and would be a database error)
# events that earned nothing, or not yet (awarded with 0 points: a cap, or a rule gave 0)
WAITING = (EventStatus.PENDING, EventStatus.REJECTED, EventStatus.NO_MATCH, EventStatus.DUPLICATE)
SHOWN_COLUMNS = (Event.id, Event.type, Event.org_code, Event.occurred_at, Event.status,
                 Event.points, Event.reason, Event.response)  # fmt: skip


def category_words() -> dict[str, str]:
    return {
        "": _("全部"),
        "pioneer": _("先锋岗位"),
        "governance": _("基层治理"),
        "volunteer": _("志愿服务"),
        "other": _("其他"),
    }


def kind_words() -> dict[str, str]:
    return {
        "award": _("获得积分"),
        "bonus": _("奖励积分"),
        "redeem": _("兑换消费"),
        "refund": _("退回"),
        "expire": _("过期"),
        "reverse": _("撤回"),
        "adjust": _("调整"),
    }


def parse_id(value: str | None) -> int | None:
    """A positive id from a query string or form, or None for anything else."""
    if not value or not value.isdigit():
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


def award_explanation(data: dict | None) -> Explanation | None:
    """The engine's explanation stored with an award line (``Explanation.as_dict()`` plus the
    rule's organisation), or None for lines that carry other data (bonus, redemption...)."""
    if not data or "formula" not in data:
        return None
    try:
        fields = {k: data[k] for k in Explanation._fields if k in data and k != "caps"}
        caps = tuple(CapNote(**c) for c in data.get("caps", ()))
        return Explanation(**fields, caps=caps)
    except TypeError:  # written by an older engine with other fields: keep the reason
        return None


def line(entry: LedgerEntry, lang: str) -> dict:
    """What one ledger line shows. The Chinese ``reason`` is the record (for an award it is
    the explanation rendered in Chinese); an English page renders the explanation in English
    when the line has one, and shows the Chinese reason otherwise (marked as Chinese)."""
    text, text_lang = entry.reason, "zh-CN"
    explanation = award_explanation(entry.explanation)
    if lang == "en" and explanation is not None:
        text, text_lang = render(explanation, "en"), "en"
    return {
        "id": entry.id,
        "date": entry.occurred_at,
        "kind": kind_words().get(entry.kind, entry.kind),
        "text": text,
        "lang": None if text_lang.startswith(lang) else text_lang,
        "points": entry.points,
        "capped": bool(explanation and any(c.cut for c in explanation.caps)),
    }


def event_title(rules: RuleSet, type_: str, lang: str) -> str:
    et = rules.event_types.get(type_)
    if et is None:
        return type_
    return et.title_en if lang == "en" and et.title_en else et.title


def event_item(event: Event, rules: RuleSet, lang: str) -> dict:
    """What an event that earned nothing (yet) shows: its type, date, where it stands and
    why, in the words the organisation or the engine recorded (Chinese)."""
    awards = (event.response or {}).get("awards") or []
    if event.status == EventStatus.PENDING:
        group, status = "pending", _("等待组织确认")
        detail = "；".join(a["reason"] for a in awards if a.get("pending") and a.get("reason"))
    elif event.status == EventStatus.REJECTED:
        group, status = "rejected", _("未通过审核")
        detail = event.reason or ""
    elif event.status == EventStatus.DUPLICATE:
        group, status = "nothing", _("重复上报")
        detail = event.reason or ""
    elif event.status == EventStatus.NO_MATCH:
        group, status = "nothing", _("没有适用的积分规则")
        detail = event.reason or ""
    elif event.points:  # confirmed since (an appeal keeps pointing at it)
        group, status = "awarded", _("已计 %(points)s 分", points=event.points)
        detail = ""
    else:  # awarded, but 0 points: a cap was reached, or the rule gave nothing this time
        group, status = "nothing", _("本次计 0 分")
        detail = "；".join(a["reason"] for a in awards if a.get("reason"))
    return {
        "id": event.id,
        "group": group,
        "date": event.occurred_at,
        "title": event_title(rules, event.type, lang),
        "status": status,
        "detail": detail,
        "detail_lang": "zh-CN" if lang == "en" else None,
    }


def ledger_lines(
    member_id: int, category: str | None, before: int | None
) -> tuple[list[LedgerEntry], bool]:
    """One page of the member's ledger, newest first, and whether there is more. 404 when
    ``before`` is not one of the member's lines."""
    query = select(LedgerEntry).where(LedgerEntry.member_id == member_id)
    if category:
        query = query.where(LedgerEntry.category == category)
    if before is not None:
        seq = db.session.scalar(
            select(LedgerEntry.seq).where(
                LedgerEntry.id == before, LedgerEntry.member_id == member_id
            )
        )
        if seq is None:
            abort(404)
        query = query.where(LedgerEntry.seq < seq)
    rows = list(db.session.scalars(query.order_by(LedgerEntry.seq.desc()).limit(PAGE + 1)))
    return rows[:PAGE], len(rows) > PAGE


def attention(member_id: int, now: dt.datetime) -> list[Event]:
    """The member's recent events that are pending, refused or earned nothing, newest first."""
    query = (
        select(Event)
        .options(load_only(*SHOWN_COLUMNS))
        .where(
            Event.member_id == member_id,
            Event.occurred_at >= now - dt.timedelta(days=ATTENTION_DAYS),
            or_(
                Event.status.in_(WAITING),
                and_(Event.status == EventStatus.AWARDED, Event.points == 0),
            ),
        )
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(ATTENTION_LIMIT)
    )
    return list(db.session.scalars(query))


@bp.route("/history")
@member_required
def history():
    me = current_member()
    lang = i18n.language()
    category = request.args.get("category", "")
    if category not in CATEGORIES:
        category = ""
    before_arg = request.args.get("before")
    before = parse_id(before_arg)
    if before_arg and before is None:
        abort(404)
    entries, more = ledger_lines(me.id, category or None, before)
    events = []
    if before is None and not category:  # the overview: on the first page of everything
        rules = current_rules()
        events = [event_item(e, rules, lang) for e in attention(me.id, utcnow())]
    return render_template(
        "web/history.html",
        lines=[line(e, lang) for e in entries],
        next_before=entries[-1].id if more else None,
        paged=before is not None,
        category=category,
        categories=category_words(),
        events=events,
        days=ATTENTION_DAYS,
    )
