"""The users page: admins only, the subtree only; creating, disabling and enabling users,
each change audited; a disabled user cannot sign in."""

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, ConsoleUser

from ..factories import ConsoleUserFactory
from ..web.conftest import text_of
from .test_console import Staff, sign_in

NEW = {"username": "new-verifier", "display_name": "王审核", "org": "sx.ty.xiaodian",
       "role": "verifier", "password": "long-enough-1", "password2": "long-enough-1"}  # fmt: skip


@pytest.fixture
def admin(app_ctx, orgs) -> Staff:
    ConsoleUserFactory(username="ty-admin", org_code="sx.ty")
    db.session.commit()
    return sign_in(app_ctx, "ty-admin")


def _user(username: str) -> ConsoleUser | None:
    return db.session.scalar(select(ConsoleUser).where(ConsoleUser.username == username))


def _actions() -> list[tuple[str, str]]:
    return [tuple(r) for r in db.session.execute(select(AuditEntry.action, AuditEntry.target))]


@pytest.mark.parametrize(("role", "allowed"), [("admin", True), ("verifier", False),
                                               ("station", False), ("viewer", False)])  # fmt: skip
def test_only_admins_reach_the_users_page(app_ctx, orgs, role, allowed):
    ConsoleUserFactory(username="u", org_code="sx.ty", role=role)
    other = ConsoleUserFactory(username="other", org_code="sx.ty.xiaodian", role="viewer")
    db.session.commit()
    staff = sign_in(app_ctx, "u")
    assert staff.client.get("/console/users").status_code == (200 if allowed else 403)
    assert staff.post("/console/users", NEW).status_code == (302 if allowed else 403)
    for change in ("disable", "enable"):
        response = staff.post(f"/console/users/{other.id}/{change}")
        assert response.status_code == (302 if allowed else 403)
    menu = text_of(staff.client.get("/console/"))
    assert ("用户" in menu.split("概览", 1)[1]) is allowed


def test_the_list_shows_the_subtree_only(admin):
    ConsoleUserFactory(username="xd-viewer", org_code="sx.ty.xiaodian", role="viewer")
    ConsoleUserFactory(username="dt-admin", org_code="sx.dt")
    ConsoleUserFactory(username="province", org_code="sx")
    db.session.commit()
    page = text_of(admin.client.get("/console/users"))
    assert "ty-admin" in page and "xd-viewer" in page
    assert "dt-admin" not in page and "province" not in page


def test_an_admin_creates_a_user_below_and_it_is_audited(app_ctx, admin):
    response = admin.post("/console/users", NEW)
    assert response.status_code == 302
    assert "已创建用户 new-verifier" in text_of(admin.client.get(response.headers["Location"]))
    user = _user("new-verifier")
    assert (user.org_code, user.role, user.display_name) == ("sx.ty.xiaodian", "verifier", "王审核")
    assert user.created_by == "ty-admin" and "long-enough-1" not in user.password_hash
    assert _actions() == [("user.create", "user:new-verifier")]
    signed_in = sign_in(app_ctx, "new-verifier", "long-enough-1")
    assert signed_in.client.get("/console/verify").status_code == 200


@pytest.mark.parametrize(("change", "message"), [
    ({"username": "ty-admin"}, "这个用户名已被使用"),
    ({"username": "X"}, "用户名为 3 到 64 个字符"),
    ({"role": "superuser"}, "请选择一个角色"),
    ({"password": "short", "password2": "short"}, "密码至少 10 个字符"),
    ({"password2": "long-enough-2"}, "两次输入的密码不一致"),
    ({"org": "sx.dt"}, "只能为本组织或下级组织创建用户"),
    ({"org": "sx"}, "只能为本组织或下级组织创建用户"),
])  # fmt: skip
def test_a_refused_user_re_renders_the_form_and_writes_nothing(admin, change, message):
    response = admin.post("/console/users", {**NEW, **change})
    assert response.status_code == 400
    page = text_of(response)
    assert message in page and "用户没有创建" in page
    assert db.session.scalar(select(db.func.count()).select_from(ConsoleUser)) == 1
    assert _actions() == []


def test_disabling_and_enabling_a_user_is_audited_and_stops_sign_in(app_ctx, admin):
    target = ConsoleUserFactory(username="xd-viewer", org_code="sx.ty.xiaodian", role="viewer")
    db.session.commit()
    victim = sign_in(app_ctx, "xd-viewer")
    assert admin.post(f"/console/users/{target.id}/disable").status_code == 302
    db.session.refresh(target)
    assert target.disabled_at is not None
    # the open session ends too, and signing in again is refused
    assert victim.client.get("/console/").status_code == 302
    staff = Staff(app_ctx.test_client())
    staff.client.get("/console/login")
    refused = staff.post("/console/login", {"username": "xd-viewer", "password": "secret-pass"})
    assert refused.status_code == 401
    assert "已停用" in text_of(admin.client.get("/console/users"))
    assert admin.post(f"/console/users/{target.id}/enable").status_code == 302
    db.session.refresh(target)
    assert target.disabled_at is None
    assert sign_in(app_ctx, "xd-viewer").client.get("/console/").status_code == 200
    assert _actions() == [("user.disable", "user:xd-viewer"), ("user.enable", "user:xd-viewer")]
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "user.disable"))
    assert (entry.username, entry.org_code, entry.before, entry.after) == (
        "ty-admin", "sx.ty.xiaodian", {"disabled": False}, {"disabled": True})  # fmt: skip


def test_an_admin_cannot_disable_themselves(admin):
    me = _user("ty-admin")
    response = admin.post(f"/console/users/{me.id}/disable")
    assert "不能停用你自己的账号" in text_of(admin.client.get(response.headers["Location"]))
    db.session.refresh(me)
    assert me.disabled_at is None and _actions() == []


@pytest.mark.parametrize("org", ["sx.dt", "sx"])
def test_users_outside_the_subtree_are_not_found(admin, org):
    outsider = ConsoleUserFactory(username="outsider", org_code=org, role="viewer")
    db.session.commit()
    for change in ("disable", "enable"):
        assert admin.post(f"/console/users/{outsider.id}/{change}").status_code == 404
    assert admin.post("/console/users/99999/disable").status_code == 404
    db.session.refresh(outsider)
    assert outsider.disabled_at is None and _actions() == []
