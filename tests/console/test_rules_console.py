"""The rules page: the effective rules with where each comes from, for every role; checking a
candidate of the organisation's own file shows its errors with line numbers, or the
simulation, and never changes the rules in force."""

import datetime as dt
import hashlib
import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import AuditEntry, Member
from app.services.rules import current_rules, registry, version_in_force

from ..conftest import ROOT
from ..factories import ConsoleUserFactory
from ..jobs.test_jobs import run_queued_jobs
from ..partner_api import hazard, shift
from ..rules_support import province_file
from ..web.conftest import text_of
from .test_console import sign_in

XIAODIAN = (ROOT / "rules" / "sx.ty.xiaodian.yaml").read_text(encoding="utf-8")
ROLES = ["admin", "verifier", "station", "viewer"]


@pytest.fixture(autouse=True)
def _rules_back(app_ctx):
    """What a test publishes stays in this process's registry: back to RULES_DIR after."""
    yield
    registry().reload()


def _directory_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "rules").iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _staff(app, org: str = "sx.ty.xiaodian", role: str = "admin"):
    ConsoleUserFactory(username="u", org_code=org, role=role)
    db.session.commit()
    return sign_in(app, "u")


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_the_effective_rules_with_their_origin(app_ctx, orgs, role):
    page = text_of(_staff(app_ctx, role=role).client.get("/console/rules"))
    # the district's own rule, the province's inherited one, and what it switched off
    assert "周末先锋岗加分" in page and "sx.ty.xiaodian.yaml:25" in page
    assert "min(event.data.hours, 6)" in page
    assert "sx.yaml:" in page and "继承" in page
    assert "停用了上级规则：safety-message" in page
    assert ("检查并模拟" in page) is (role == "admin")


def test_the_rules_of_an_organisation_without_a_file_are_its_ancestors(app_ctx, orgs):
    page = text_of(_staff(app_ctx, org="sx.ty.xiaodian.pingyang.station-01").client.get(
        "/console/rules"))  # fmt: skip
    assert "周末先锋岗加分" in page and "sx.ty.xiaodian.pingyang.yaml" in page


@pytest.mark.parametrize("role", ROLES)
def test_only_admins_check_a_candidate(app_ctx, orgs, role):
    staff = _staff(app_ctx, role=role)
    response = staff.post("/console/rules/check", {"text": XIAODIAN})
    assert response.status_code == (200 if role == "admin" else 403)


def test_the_form_is_prefilled_with_the_file_in_force(app_ctx, orgs):
    page = _staff(app_ctx).client.get("/console/rules").get_data(as_text=True)
    assert "id: xd-weekend-shift" in page and "不会生效" in page


def _unknown_field() -> str:
    lines = XIAODIAN.split("\n")
    assert lines[20] == "    category: governance"
    return "\n".join([*lines[:21], "    colour: red", *lines[21:]])


@pytest.mark.parametrize(("candidate", "where", "words"), [
    (XIAODIAN.replace("name: 小店区\n", "name: [小店区\n", 1), "sx.ty.xiaodian.yaml:7:", "YAML"),
    (_unknown_field(), "sx.ty.xiaodian.yaml:22:", "colour"),
    (XIAODIAN.replace("points: min(event.data.hours, 6)", "points: min(event.data.hours,, 6)"),
     "sx.ty.xiaodian.yaml:31:", "points"),
])  # fmt: skip
def test_a_broken_candidate_shows_its_line_and_changes_nothing(app_ctx, orgs, candidate, where,
                                                                words):  # fmt: skip
    version, digest = current_rules().version, _directory_digest()
    staff = _staff(app_ctx)
    response = staff.post("/console/rules/check", {"text": candidate})
    assert response.status_code == 422
    page = text_of(response)
    assert where in page and words in page and "这个版本不能使用" in page
    assert "现行规则没有任何改变" in page
    line = int(where.split(":")[1])
    assert f'<tr id="L{line}" class="error">' in response.get_data(as_text=True)
    assert current_rules().version == version and _directory_digest() == digest
    assert registry().reload().ruleset.version == version
    entry = db.session.scalar(select(AuditEntry))
    assert (entry.action, entry.target, entry.username) == (
        "rules.check",
        "rules:sx.ty.xiaodian",
        "u",
    )
    assert entry.after["errors"] >= 1 and entry.after["candidate"] is None


def test_an_uploaded_file_is_checked_and_too_large_is_refused(app_ctx, orgs):
    import io

    staff = _staff(app_ctx)
    broken = _unknown_field().encode()
    response = staff.client.post("/console/rules/check", data={
        "csrf": staff.csrf(), "text": "", "file": (io.BytesIO(broken), "mine.yaml")},
        content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 422 and "sx.ty.xiaodian.yaml:22:" in text_of(response)
    big = b"# " + b"x" * (256 * 1024) + b"\n"
    response = staff.client.post("/console/rules/check", data={
        "csrf": staff.csrf(), "file": (io.BytesIO(big), "big.yaml")},
        content_type="multipart/form-data")  # fmt: skip
    assert response.status_code == 400 and "文件不能超过 256 KB" in text_of(response)
    assert staff.post("/console/rules/check", {"text": "  "}).status_code == 400


def _activity(partner_api) -> None:
    partner_api.put_member("r2", name="李大明")
    for i in range(3):
        assert partner_api.post_event(shift(f"s{i}", days_ago=1 + i)).status_code == 201
    assert partner_api.post_event(hazard("h1", member="r2", days_ago=2)).status_code == 201


def _simulated(staff, text: str) -> tuple[str, str]:
    """Check ``text``, run the simulation job; its page's URL and text."""
    response = staff.post("/console/rules/check", {"text": text})
    assert response.status_code == 200, text_of(response)
    url = re.search(r'href="(/console/rules/simulations/[^"]+)"', response.get_data(as_text=True))
    assert url, text_of(response)
    run_queued_jobs()
    page = staff.client.get(url.group(1))
    assert page.status_code == 200
    return url.group(1), text_of(page)


def test_a_good_candidate_is_simulated_by_a_job(app_ctx, partner_api, rider):
    _activity(partner_api)
    version, digest = current_rules().version, _directory_digest()
    staff = _staff(app_ctx, org="sx")
    url, page = _simulated(staff, province_file())
    assert "重放了 4 条活动" in page
    assert "现行规则共 55 分，新版本共 100 分" in page
    assert "张*华" in page and "张小华" not in page  # masked
    assert "发布新版本" in page
    assert current_rules().version == version and _directory_digest() == digest
    entry = db.session.scalar(select(AuditEntry))
    assert entry.action == "rules.check" and entry.after["errors"] == 0
    assert entry.after["candidate"] not in (None, version)
    # another organisation cannot see it, even an ancestor's child or with any role
    other = ConsoleUserFactory(username="o", org_code="sx.ty.xiaodian", role="admin")
    db.session.commit()
    assert sign_in(app_ctx, other.username).client.get(url).status_code == 404
    assert staff.client.get("/console/rules/simulations/not-a-job").status_code == 404


def test_a_running_simulation_shows_its_progress_and_refreshes(app_ctx, orgs):
    from app.jobs.rules import enqueue_simulation

    staff = _staff(app_ctx, org="sx")
    job = enqueue_simulation("sx", province_file(), current_rules().version, 1)
    if job.is_finished:  # the embedded default ran it inline: make it look unfinished
        job.set_status("started")
    job.meta.update({"done": 3, "total": 10})
    job.save_meta()
    response = staff.client.get(f"/console/rules/simulations/{job.id}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<meta http-equiv="refresh" content="2">' in html
    assert '<progress value="3" max="10">' in html


def test_publishing_what_was_simulated_and_recalculating(app_ctx, partner_api, rider):
    _activity(partner_api)
    before = current_rules().version
    staff = _staff(app_ctx, org="sx")
    url, _ = _simulated(staff, province_file())
    job_id = url.rsplit("/", 1)[1]
    since = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    response = staff.post("/console/rules/publish", {
        "job": job_id, "note": "先锋岗加倍", "recalculate_from": since})  # fmt: skip
    page = text_of(response)
    assert response.status_code == 200, page
    new = version_in_force()
    assert new != before and f"规则版本 {new} 已发布" in page
    run_queued_jobs()
    db.session.expire_all()
    link = re.search(r'href="(/console/rules/recalculations/[^"]+)"',
                     response.get_data(as_text=True))  # fmt: skip
    done = text_of(staff.client.get(link.group(1)))
    assert "已完成" in done and "积分有变化的活动" in done
    other = ConsoleUserFactory(username="o", org_code="sx.ty", role="admin")
    db.session.commit()
    outsider = sign_in(app_ctx, other.username).client
    assert outsider.get(link.group(1)).status_code == 404  # another organisation's job
    assert outsider.get(url).status_code == 404
    # nor can it publish the simulation of another organisation (the job is not its own)
    assert (
        sign_in(app_ctx, other.username).post("/console/rules/publish", {"job": job_id}).status_code
        == 404
    )
    # the shifts were re-scored: 3 shifts of 2 h at 10 a hour (r1), and r2's hazard as before
    r1 = db.session.scalar(select(Member).where(Member.display_name == "张小华"))
    assert r1.balance == 60 + 3 * 10
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "rules.publish")).one()
    assert entry.before == {"version": before}
    assert entry.after == {"version": new, "note": "先锋岗加倍"}
    assert registry().current().version == new
    # the page now offers the published file to start from
    assert "10 * min(event.data.hours, 8)" in staff.client.get("/console/rules").get_data(
        as_text=True
    )


def test_a_stale_check_or_a_bad_date_publishes_nothing(app_ctx, partner_api, rider):
    _activity(partner_api)
    staff = _staff(app_ctx, org="sx")
    url, _ = _simulated(staff, province_file())
    job_id = url.rsplit("/", 1)[1]
    before = version_in_force()
    for bad in ("2999-01-01", "not-a-date"):
        response = staff.post("/console/rules/publish", {"job": job_id, "recalculate_from": bad})
        assert response.status_code == 400 and "日期不对" in text_of(response)
    assert version_in_force() == before
    # somebody else publishes meanwhile: this check is stale
    other = province_file(new="points: 6 * min(event.data.hours, 8)")
    url2, _ = _simulated(staff, other)
    assert staff.post("/console/rules/publish", {"job": url2.rsplit("/", 1)[1]}).status_code == 200
    middle = version_in_force()
    response = staff.post("/console/rules/publish", {"job": job_id})
    assert response.status_code == 409 and "请重新检查" in text_of(response)
    assert version_in_force() == middle
    assert "请重新检查" in text_of(staff.client.get(url))  # its page no longer offers publish


@pytest.mark.parametrize("role", ["verifier", "station", "viewer"])
def test_only_admins_publish(app_ctx, orgs, role):
    staff = _staff(app_ctx, role=role)
    assert staff.post("/console/rules/publish", {"job": "x"}).status_code == 403
