"""The console: creating users, signing in, every route confined to the user's subtree and
role, and the verification queue."""

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, ConsoleUser, Event

from ..factories import ConsoleUserFactory
from ..partner_api import volunteer
from ..web.conftest import text_of

PASSWORD = "secret-pass"


class Staff:
    def __init__(self, client):
        self.client = client

    def csrf(self) -> str:
        with self.client.session_transaction() as session:
            return session.get("csrf", "")

    def post(self, path: str, data: dict | None = None):
        return self.client.post(path, data={"csrf": self.csrf(), **(data or {})})


def sign_in(app, username: str, password: str = PASSWORD) -> Staff:
    staff = Staff(app.test_client())
    staff.client.get("/console/login")  # a session with its CSRF token
    response = staff.post("/console/login", {"username": username, "password": password})
    assert response.status_code == 302, text_of(response)
    return staff


def test_users_are_created_on_the_command_line_with_a_hashed_password(app_ctx, orgs, runner):
    result = runner.invoke(
        args=["users", "create", "xd-admin", "--org", "sx.ty.xiaodian", "--role", "admin",
              "--password-stdin"], input="a-long-password\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(ConsoleUser))
    assert (user.org_code, user.role) == ("sx.ty.xiaodian", "admin")
    assert user.password_hash.startswith("scrypt$") and "a-long-password" not in user.password_hash
    assert db.session.scalar(select(AuditEntry.action)) == "user.create"
    for bad, message in (
        (["users", "create", "x", "--org", "sx", "--role", "admin", "--password-stdin"], "username"),
        (["users", "create", "xyz", "--org", "nowhere", "--role", "admin", "--password-stdin"],
         "unknown organisation"),
        (["users", "create", "xd-admin", "--org", "sx", "--role", "admin", "--password-stdin"],
         "taken"),
    ):  # fmt: skip
        refused = runner.invoke(args=bad, input="a-long-password\n")
        assert refused.exit_code != 0 and message in refused.output
    short = runner.invoke(args=["users", "create", "abc", "--org", "sx", "--role", "viewer",
                                "--password-stdin"], input="short\n")  # fmt: skip
    assert short.exit_code != 0 and "at least" in short.output


def test_signing_in_needs_the_right_password(app_ctx, orgs):
    ConsoleUserFactory(username="alice", org_code="sx.dt")
    staff = Staff(app_ctx.test_client())
    staff.client.get("/console/login")
    wrong = staff.post("/console/login", {"username": "alice", "password": "nope-nope-nope"})
    assert wrong.status_code == 401 and "用户名或密码不对" in text_of(wrong)
    assert staff.client.get("/console/").status_code == 302  # still signed out
    unknown = staff.post("/console/login", {"username": "bob", "password": PASSWORD})
    assert unknown.status_code == 401
    assert sign_in(app_ctx, "alice").client.get("/console/").status_code == 200


def test_a_disabled_user_cannot_sign_in(app_ctx, orgs):
    user = ConsoleUserFactory(username="gone", org_code="sx")
    user.disabled_at = user.created_at
    db.session.commit()
    staff = Staff(app_ctx.test_client())
    staff.client.get("/console/login")
    assert (
        staff.post("/console/login", {"username": "gone", "password": PASSWORD}).status_code == 401
    )


def test_pages_need_a_signed_in_user(app_ctx, orgs):
    client = app_ctx.test_client()
    for path in ("/console/", "/console/verify"):
        response = client.get(path)
        assert response.status_code == 302 and "/console/login" in response.headers["Location"]


@pytest.mark.parametrize(("role", "allowed"), [("admin", True), ("verifier", True),
                                               ("station", False), ("viewer", False)])  # fmt: skip
def test_only_admins_and_verifiers_reach_the_verification_queue(app_ctx, orgs, role, allowed):
    ConsoleUserFactory(username="u", org_code="sx.dt", role=role)
    staff = sign_in(app_ctx, "u")
    assert staff.client.get("/console/verify").status_code == (200 if allowed else 403)
    assert staff.post("/console/verify", {"event": "1", "action": "approve"}).status_code == (
        302 if allowed else 403
    )


def test_the_queue_shows_its_subtree_only_and_approves_what_is_ticked(app_ctx, partner_api, rider):
    assert partner_api.post_event(volunteer("v1")).json["status"] == "pending"
    event = db.session.scalar(select(Event))
    ConsoleUserFactory(username="dt", org_code="sx.dt", role="verifier")
    ConsoleUserFactory(username="ty", org_code="sx.ty", role="verifier")
    outsider = sign_in(app_ctx, "ty")
    assert "没有待确认的活动" in text_of(outsider.client.get("/console/verify"))
    # tampering: the event id of another subtree is skipped, nothing changes
    response = outsider.post("/console/verify", {"event": str(event.id), "action": "approve"})
    assert "已处理 0 项，跳过 1 项" in text_of(outsider.client.get(response.headers["Location"]))
    db.session.refresh(event)
    assert event.status == "pending"
    staff = sign_in(app_ctx, "dt")
    page = text_of(staff.client.get("/console/verify"))
    assert "志愿服务" in page and "张小华" in page
    response = staff.post("/console/verify", {"event": str(event.id), "action": "approve"})
    assert "已处理 1 项" in text_of(staff.client.get(response.headers["Location"]))
    db.session.refresh(event)
    assert event.status == "awarded"


def test_rejecting_needs_a_reason(app_ctx, partner_api, rider):
    partner_api.post_event(volunteer("v1"))
    event = db.session.scalar(select(Event))
    ConsoleUserFactory(username="dt", org_code="sx.dt", role="verifier")
    staff = sign_in(app_ctx, "dt")
    response = staff.post("/console/verify", {"event": str(event.id), "action": "reject"})
    assert "请写明原因" in text_of(staff.client.get(response.headers["Location"]))
    staff.post("/console/verify", {"event": str(event.id), "action": "reject",
                                   "reason": "没有签到记录"})  # fmt: skip
    db.session.refresh(event)
    assert (event.status, event.reason) == ("rejected", "没有签到记录")


def test_forms_need_their_csrf_token_and_errors_are_pages(app_ctx, orgs):
    ConsoleUserFactory(username="dt", org_code="sx.dt")
    staff = sign_in(app_ctx, "dt")
    refused = staff.client.post("/console/verify", data={"event": "1", "action": "approve"})
    assert refused.status_code == 400 and refused.content_type.startswith("text/html")
    missing = staff.client.get("/console/nothing")
    assert missing.status_code == 404 and missing.content_type.startswith("text/html")
    assert re.search("找不到", text_of(missing))
    assert staff.post("/console/logout").status_code == 302
    assert staff.client.get("/console/").status_code == 302
