"""Erasing a member's personal data: the name, phone hash, partner references, appeal text,
login links and certificates go, the name leaves every free text; the ledger, the totals and
the board places stay; a second erasure changes nothing; the audit record names no one."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from app.errors import Invalid, NotFound
from app.extensions import db
from app.models import (
    Appeal,
    AuditEntry,
    Certificate,
    Event,
    LedgerEntry,
    LoginToken,
    Member,
    PartnerMember,
)
from app.redis_client import get_redis
from app.services import erasure
from app.services.audit import verify_ledger
from app.services.boards.rebuild import rebuild_boards
from app.services.erasure import ERASED_NAME, ERASED_NOTE, erase_member
from app.services.members import phone_hash

from ..factories import AppealFactory, AuditEntryFactory, CertificateFactory
from ..partner_api import shift, volunteer
from ..rewards_support import assert_ledger_consistent, entries
from ..rewards_support import member_id as member_of
from ..web.conftest import sign_in

NAME, PHONE = "张小华", "13800138000"
REASON = "本人书面申请删除"


def scalar(query):
    return db.session.scalar(query)


def dump(*columns) -> str:
    """Every value of ``columns``, as one JSON text to look for personal data in."""
    rows = []
    for column in columns:
        rows += [r[0] for r in db.session.execute(select(column))]
    return json.dumps(rows, ensure_ascii=False, default=str)


def _board(api, scope: str) -> dict:
    response = api.client.get(f"/api/v1/leaderboards/{scope}", query_string={"period": "all"},
                              headers=api.headers)  # fmt: skip
    assert response.status_code == 200, response.json
    return response.json


@pytest.fixture
def busy(app_ctx, partner_api, other_api, rider):
    """r1 (张小华, phone 13800138000) known to two partners, with points, a pending event
    whose data and reason name them, an appeal, a certificate, a login link and audit
    entries that name them; r2, another rider, with fewer points."""
    member = member_of(rider)
    assert other_api.put_member("e-13800138000", phone=PHONE).status_code == 201
    assert member_of("e-13800138000") == member  # the phone linked them: one person
    assert partner_api.put_member("r2", name="李大明").status_code == 201
    for n in range(3):
        assert partner_api.post_event(shift(f"s{n}", days_ago=1 + n)).status_code == 201
    assert partner_api.post_event(shift("t0", member="r2")).status_code == 201
    body = volunteer("v1")
    body["data"]["project"] = f"{NAME}的社区服务"
    assert partner_api.post_event(body).status_code == 201
    pending = scalar(select(Event).where(Event.partner_event_id == "v1"))
    pending.reason = f"请{NAME}补充照片"
    sign_in(app_ctx, partner_api, rider)  # a used login link
    appeal = AppealFactory(member_id=member, note=f"我是{NAME}，电话 {PHONE}，值守没有积分",
                           answer=f"{NAME}你好，已补记", event_id=pending.id)  # fmt: skip
    CertificateFactory(member_id=member, code="CERTERASE1")
    AuditEntryFactory(target=f"appeal:{appeal.id}", action="appeal.answer",
                      after={"answer": f"{NAME}你好，已补记"})  # fmt: skip
    AuditEntryFactory(target=f"event:{pending.id}", action="event.reject",
                      after={"reason": f"{NAME}的照片不清楚", "status": "rejected"})  # fmt: skip
    AuditEntryFactory(target="event:999999", after={"note": f"{NAME}，另一位同名的人"})
    db.session.commit()
    return member


def test_erasure_clears_the_name_phone_references_and_texts_everywhere(busy, app_ctx):
    done = erase_member(busy, actor=None, reason=REASON)
    db.session.commit()
    assert not done.already
    assert (done.partner_refs, done.login_links, done.certificates, done.appeals) == (2, 1, 1, 1)
    assert (done.events, done.audit_entries) == (1, 2)
    member = db.session.get(Member, busy)
    assert member.display_name == ERASED_NAME and member.phone_hash is None
    assert member.erased_at is not None
    assert scalar(select(func.count()).where(Member.phone_hash == phone_hash(PHONE))) == 0
    refs = list(
        db.session.scalars(select(PartnerMember.ref).where(PartnerMember.member_id == busy))
    )
    assert len(refs) == 2 and all(r.startswith("erased-") and len(r) <= 128 for r in refs)
    assert len(set(refs)) == 2
    assert scalar(select(func.count()).select_from(LoginToken)) == 0
    assert scalar(select(func.count()).select_from(Certificate)) == 0
    appeal = scalar(select(Appeal))
    assert appeal.note == ERASED_NOTE and appeal.answer == f"{ERASED_NAME}你好，已补记"
    text = dump(
        Member.display_name, PartnerMember.ref, Event.data, Event.reason, Appeal.note,
        Appeal.answer, AuditEntry.before, AuditEntry.after, LedgerEntry.reason,
        LedgerEntry.explanation,
    )  # fmt: skip
    assert "李大明" in text  # the other rider is untouched
    assert "r1" not in refs and "e-13800138000" not in refs
    for personal in ("e-13800138000", PHONE, phone_hash(PHONE)):
        assert personal not in text
    # the name is gone from everything tied to the member; an unrelated entry keeps its words
    assert text.count(NAME) == 1 and f"{NAME}，另一位同名的人" in text


def test_the_ledger_totals_and_board_places_stay(busy, app_ctx, partner_api):
    before = [(e.id, e.hash, e.points) for e in entries(busy)]
    member = db.session.get(Member, busy)
    totals = (member.balance, member.lifetime_points, member.level, member.ledger_head)
    scopes = ("sx", "ind.delivery", "partner")
    boards = {scope: _board(partner_api, scope) for scope in scopes}
    assert boards["sx"]["items"][0]["name"] == "张*华"
    erase_member(busy, actor=None, reason=REASON)
    db.session.commit()
    assert [(e.id, e.hash, e.points) for e in entries(busy)] == before
    assert_ledger_consistent(busy)
    member = db.session.get(Member, busy)
    assert (member.balance, member.lifetime_points, member.level, member.ledger_head) == totals
    assert member.balance == sum(e.points for e in entries(busy))
    report = verify_ledger()
    assert report.ok, report.problems
    rebuild_boards(get_redis(), app_ctx.config["APP_TIMEZONE"])
    for scope in scopes:
        after = _board(partner_api, scope)
        assert [(i["rank"], i["points"]) for i in after["items"]] == [
            (i["rank"], i["points"]) for i in boards[scope]["items"]
        ], scope
        assert after["items"][0]["name"] == ERASED_NAME
        assert NAME not in json.dumps(after, ensure_ascii=False)


def test_the_rider_can_no_longer_sign_in(busy, app_ctx, partner_api):
    signed_in = sign_in(app_ctx, partner_api, "r1")
    link = partner_api.client.post("/api/v1/members/r1/login-link", headers=partner_api.headers)
    url = link.json["url"].replace("http://localhost", "")
    erase_member(busy, actor=None, reason=REASON)
    db.session.commit()
    assert signed_in.get("/m/").status_code == 401  # the open session ends
    assert app_ctx.test_client().get(url).status_code != 302  # the unused link is gone
    again = partner_api.client.post("/api/v1/members/r1/login-link", headers=partner_api.headers)
    assert again.status_code == 404  # the partner no longer knows r1
    assert app_ctx.test_client().get("/verify/CERTERASE1").status_code == 404


def test_the_old_reference_or_phone_makes_a_new_separate_member(busy, app_ctx, partner_api):
    erase_member(busy, actor=None, reason=REASON)
    db.session.commit()
    refused = partner_api.post_event(shift("s9"))
    assert refused.status_code == 422 and refused.json["error"]["code"] == "unknown_member"
    assert partner_api.get_member("r1").status_code == 404
    response = partner_api.put_member("r1", name=NAME, phone=PHONE)
    assert response.status_code == 201
    fresh = member_of("r1")
    assert fresh != busy
    assert db.session.get(Member, fresh).balance == 0
    assert partner_api.post_event(shift("s9")).status_code == 201
    assert entries(fresh) and all(e.member_id == fresh for e in entries(fresh))
    old = db.session.get(Member, busy)
    assert old.display_name == ERASED_NAME and old.phone_hash is None
    assert_ledger_consistent(busy)
    assert verify_ledger().ok


def test_erasing_twice_changes_nothing_and_says_so(busy, app_ctx):
    first = erase_member(busy, actor=None, reason=REASON)
    db.session.commit()
    audits = scalar(select(func.count()).select_from(AuditEntry))
    refs = sorted(db.session.scalars(select(PartnerMember.ref)))
    again = erase_member(busy, actor=None, reason=REASON)
    db.session.commit()
    assert again.already and again.erased_at == first.erased_at
    assert again.counts() == dict.fromkeys(first.counts(), 0)
    assert scalar(select(func.count()).select_from(AuditEntry)) == audits
    assert sorted(db.session.scalars(select(PartnerMember.ref))) == refs


def test_the_audit_record_has_the_reason_and_counts_but_no_personal_data(busy, app_ctx):
    erase_member(busy, actor=None, reason=REASON)
    db.session.commit()
    entry = scalar(select(AuditEntry).where(AuditEntry.action == "member.erase"))
    assert (entry.username, entry.org_code, entry.target) == ("cli", "sx.dt.pingcheng",
                                                              f"member:{busy}")  # fmt: skip
    assert entry.after["reason"] == REASON and entry.after["partner_refs"] == 2
    text = json.dumps([entry.before, entry.after], ensure_ascii=False)
    for personal in (NAME, PHONE, "r1", "e-1380", phone_hash(PHONE), "erased-"):
        assert personal not in text


@pytest.mark.parametrize(
    ("reason", "code"),
    [("短", "invalid_reason"), ("x" * 501, "invalid_reason"), (f"{NAME}本人要求", "personal_reason"),
     ("应 e-13800138000 的要求", "personal_reason")],
)  # fmt: skip
def test_a_bad_reason_is_refused_and_nothing_changes(busy, app_ctx, reason, code):
    with pytest.raises(Invalid) as refused:
        erase_member(busy, actor=None, reason=reason)
    assert refused.value.code == code
    db.session.rollback()
    member = db.session.get(Member, busy)
    assert member.display_name == NAME and member.erased_at is None


def test_an_unknown_member_is_not_found(app_ctx):
    with pytest.raises(NotFound):
        erase_member(424242, actor=None, reason=REASON)


def test_erased_refs_are_keyed_and_do_not_reveal_the_reference(app_ctx):
    token = erasure.erased_ref(1, PHONE)
    assert token == erasure.erased_ref(1, PHONE) != erasure.erased_ref(2, PHONE)
    assert PHONE not in token and len(token) == len("erased-") + 64
    app_ctx.config["SECRET_KEY"], kept = "another-secret", app_ctx.config["SECRET_KEY"]
    try:
        assert erasure.erased_ref(1, PHONE) != token
    finally:
        app_ctx.config["SECRET_KEY"] = kept
