"""Emergency mode (平急转换) in the console: every user of the subtree reads the emergencies,
admins declare and end them, nothing outside the subtree is reachable, a bad declaration
writes nothing, and the rules' emergency multiplier follows the declaration at once."""

import datetime as dt

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import AuditEntry, Emergency

from ..conftest import TZ
from ..factories import ConsoleUserFactory, EmergencyFactory
from ..partner_api import shift
from ..web.conftest import text_of
from .test_console import sign_in

FORM = "%Y-%m-%dT%H:%M"


def local_input(moment: dt.datetime) -> str:
    return moment.astimezone(TZ).strftime(FORM)


def declaration(**fields) -> dict:
    now = dt.datetime.now(TZ)
    form = {"org": "sx.dt", "name": "御河防汛", "kind": "flood",
            "starts_at": local_input(now - dt.timedelta(days=3)),
            "planned_end_at": local_input(now + dt.timedelta(days=2))}  # fmt: skip
    return form | fields


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def emergencies() -> list[Emergency]:
    db.session.expire_all()
    return list(db.session.scalars(select(Emergency).order_by(Emergency.id)))


@pytest.fixture
def staff(app_ctx, orgs):
    """Users of Datong (sx.dt) in each role, and an admin of Taiyuan (sx.ty)."""
    for role in ("admin", "verifier", "station", "viewer"):
        ConsoleUserFactory(username=f"dt-{role}", org_code="sx.dt", role=role)
    ConsoleUserFactory(username="ty-admin", org_code="sx.ty", role="admin")
    db.session.commit()
    return app_ctx


def test_the_page_needs_a_signed_in_user(client, orgs):
    response = client.get("/console/emergencies")
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["admin", "verifier", "station", "viewer"])
def test_every_role_reads_only_admins_declare_and_end(staff, role):
    EmergencyFactory(org_code="sx.dt.pingcheng", name="平城暴雪", kind="snowstorm")
    db.session.commit()
    (emergency,) = emergencies()
    user = sign_in(staff, f"dt-{role}")
    page = user.client.get("/console/emergencies")
    assert page.status_code == 200 and "平城暴雪" in text_of(page)
    assert "应急状态" in text_of(user.client.get("/console/"))  # in the menu
    allowed = role == "admin"
    assert ('action="/console/emergencies"' in page.get_data(as_text=True)) is allowed
    declared = user.post("/console/emergencies", declaration())
    ended = user.post(f"/console/emergencies/{emergency.id}/end")
    assert (declared.status_code, ended.status_code) == ((302, 302) if allowed else (403, 403))
    assert len(emergencies()) == (2 if allowed else 1)
    assert (emergencies()[0].ended_at is not None) is allowed


def test_declaring_records_it_with_an_audit_entry(staff):
    admin = sign_in(staff, "dt-admin")
    response = admin.post("/console/emergencies", declaration(org="sx.dt.pingcheng",
                                                              name="  平城防汛  "))  # fmt: skip
    assert response.status_code == 302
    page = text_of(admin.client.get(response.headers["Location"]))
    assert "已宣布应急状态“平城防汛”" in page and "生效中" in page
    (emergency,) = emergencies()
    assert (emergency.org_code, emergency.name, emergency.kind, emergency.ended_at) == (
        "sx.dt.pingcheng", "平城防汛", "flood", None)  # fmt: skip
    assert emergency.in_force(dt.datetime.now(dt.UTC))
    audit = db.session.scalar(select(AuditEntry))
    assert (audit.action, audit.username, audit.org_code, audit.target) == (
        "emergency.declare", "dt-admin", "sx.dt.pingcheng", f"emergency:{emergency.id}")  # fmt: skip
    assert audit.after["name"] == "平城防汛"


def test_a_blank_start_means_now(staff):
    admin = sign_in(staff, "dt-admin")
    before = dt.datetime.now(dt.UTC)
    assert admin.post("/console/emergencies", declaration(starts_at="")).status_code == 302
    (emergency,) = emergencies()
    assert before - dt.timedelta(seconds=1) <= emergency.starts_at <= dt.datetime.now(dt.UTC)


NOW = dt.datetime.now(TZ)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"org": "sx.ty"}, "请填写你的组织或下级组织的编码"),  # another subtree
        ({"org": "sx"}, "请填写你的组织或下级组织的编码"),  # above the user
        ({"org": "sx.dt.nowhere"}, "请填写你的组织或下级组织的编码"),  # no such organisation
        ({"name": " 雪 "}, "名称至少 2 个字"),
        ({"name": "雪" * 101}, "名称不超过 100 个字"),
        ({"kind": "meteor"}, "请选择类型"),
        ({"starts_at": "tomorrow"}, "开始时间的格式不对"),
        ({"starts_at": "0001-01-01T00:00"}, "开始时间的格式不对"),
        ({"planned_end_at": ""}, "请填写计划结束时间"),
        ({"planned_end_at": local_input(NOW - dt.timedelta(days=4))}, "要晚于开始时间"),
        ({"starts_at": local_input(NOW - dt.timedelta(days=3)),
          "planned_end_at": local_input(NOW - dt.timedelta(days=1))}, "计划结束时间已经过去了"),
    ],
)  # fmt: skip
def test_a_bad_declaration_is_shown_again_and_writes_nothing(staff, fields, message):
    admin = sign_in(staff, "dt-admin")
    response = admin.post("/console/emergencies", declaration(**fields))
    assert response.status_code == 422 and message in text_of(response)
    html = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in html and 'name="csrf"' in html
    if "name" in fields:
        assert f'value="{fields["name"]}"' in html  # what was typed comes back
    assert count(Emergency) == 0 and count(AuditEntry) == 0


def test_ending_sets_the_end_once_with_an_audit_entry(staff):
    EmergencyFactory(org_code="sx.dt", name="御河防汛")
    db.session.commit()
    (emergency,) = emergencies()
    admin = sign_in(staff, "dt-admin")
    response = admin.post(f"/console/emergencies/{emergency.id}/end")
    page = text_of(admin.client.get(response.headers["Location"]))
    assert "已结束应急状态“御河防汛”" in page and "已结束" in page
    (emergency,) = emergencies()
    assert emergency.ended_at is not None
    assert not emergency.in_force(dt.datetime.now(dt.UTC))
    audit = db.session.scalar(select(AuditEntry))
    assert (audit.action, audit.before, audit.after["ended_at"]) == (
        "emergency.end", {"ended_at": None}, emergency.ended_at.isoformat())  # fmt: skip
    again = admin.post(f"/console/emergencies/{emergency.id}/end")
    assert "已经结束了" in text_of(admin.client.get(again.headers["Location"]))
    assert count(AuditEntry) == 1 and emergencies()[0].ended_at == emergency.ended_at


def test_a_planned_emergency_can_be_called_off(staff):
    EmergencyFactory(org_code="sx.dt", name="寒潮预案",
                     starts_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1),
                     planned_end_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=3))  # fmt: skip
    db.session.commit()
    (emergency,) = emergencies()
    admin = sign_in(staff, "dt-admin")
    assert "未开始" in text_of(admin.client.get("/console/emergencies"))
    admin.post(f"/console/emergencies/{emergency.id}/end")
    (emergency,) = emergencies()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert emergency.ended_at is not None and not emergency.in_force(later)


def test_another_subtree_is_neither_listed_nor_reachable(staff):
    EmergencyFactory(org_code="sx.dt", name="御河防汛")
    EmergencyFactory(org_code="sx", name="全省防汛")  # above Taiyuan, not in its subtree
    db.session.commit()
    dt_emergency, province = emergencies()
    outsider = sign_in(staff, "ty-admin")
    page = text_of(outsider.client.get("/console/emergencies"))
    assert "御河防汛" not in page and "全省防汛" not in page
    for emergency_id in (dt_emergency.id, province.id, 999999, 2**31 - 1):
        assert outsider.post(f"/console/emergencies/{emergency_id}/end").status_code == 404
    assert outsider.post(f"/console/emergencies/{2**31}/end").status_code == 404
    assert all(e.ended_at is None for e in emergencies()) and count(AuditEntry) == 0


def test_the_multiplier_applies_while_declared_and_stops_when_ended(staff, partner_api, rider):
    """r1's shifts at home (sx.dt.pingcheng): pioneer-shift is 5 × hours, doubled by its
    emergency multiplier while an emergency is in force for sx.dt (rules/sx.yaml)."""
    before = partner_api.post_event(shift("s0", days_ago=1))  # also fills the emergency cache
    assert before.json["points"] == 15
    admin = sign_in(staff, "dt-admin")
    assert admin.post("/console/emergencies", declaration(name="御河防汛")).status_code == 302

    during = partner_api.post_event(shift("s1", days_ago=2))  # within the declared span
    assert during.json["points"] == 30
    assert "应急加倍：御河防汛" in during.json["awards"][0]["reason"]
    outside = partner_api.post_event(shift("s2", days_ago=4))  # before it started
    assert outside.json["points"] == 15

    (emergency,) = emergencies()
    assert admin.post(f"/console/emergencies/{emergency.id}/end").status_code == 302
    start = dt.datetime.now(TZ)
    after = partner_api.post_event(shift("s3") | {
        "occurred_at": start.isoformat(),
        "data": {"hours": 3, "start": start.isoformat(),
                 "end": (start + dt.timedelta(hours=3)).isoformat()},
    })  # fmt: skip
    assert after.status_code == 201, after.json
    assert after.json["points"] == 15
