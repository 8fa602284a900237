"""CLI commands that touch the database: partners, organisations and members."""

import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Organisation, Partner, PartnerKey
from app.services.partners import hash_key


def test_partners_create_prints_the_key_alone_on_the_last_line(app_ctx, runner):
    result = runner.invoke(args=["partners", "create", "美团外卖", "--code", "meituan",
                                 "--org", "sx.ty", "--type", "pioneer.*"])  # fmt: skip
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"pp_[0-9a-f]{12}_[A-Za-z0-9_-]{40,}", key)
    partner = db.session.scalar(select(Partner))
    assert (partner.code, partner.allowed_orgs, partner.allowed_types) == (
        "meituan", ["sx.ty"], ["pioneer.*"])  # fmt: skip
    stored = db.session.scalar(select(PartnerKey))
    assert stored.key_hash == hash_key(key) and key not in stored.key_hash


def test_partners_create_refuses_a_duplicate_code(app_ctx, runner):
    assert runner.invoke(args=["partners", "create", "A", "--code", "a"]).exit_code == 0
    result = runner.invoke(args=["partners", "create", "B", "--code", "a"])
    assert result.exit_code == 1
    assert "partner 'a' exists already" in result.output


CSV = """code,name,kind
sx,山西省,province
sx.ty,太原市,city
sx.ty.xiaodian,小店区,district
"""


def test_orgs_import_is_idempotent(app_ctx, runner, tmp_path):
    path = tmp_path / "orgs.csv"
    path.write_text(CSV, encoding="utf-8")
    first = runner.invoke(args=["orgs", "import", str(path)])
    assert first.exit_code == 0, first.output
    assert "3 created, 0 updated, 0 unchanged" in first.output
    again = runner.invoke(args=["orgs", "import", str(path)])
    assert "0 created, 0 updated, 3 unchanged" in again.output
    path.write_text(CSV.replace("小店区", "小店区（新）"), encoding="utf-8")
    changed = runner.invoke(args=["orgs", "import", str(path)])
    assert "0 created, 1 updated, 2 unchanged" in changed.output
    org = db.session.scalar(select(Organisation).where(Organisation.code == "sx.ty.xiaodian"))
    assert (org.name, org.parent_code, org.depth) == ("小店区（新）", "sx.ty", 2)


def test_orgs_import_reads_yaml_and_thousands_of_rows(app_ctx, runner, tmp_path):
    rows = ["organisations:", "  - {code: sx, name: 山西省, kind: province}"]
    rows += [f"  - {{code: sx.s{i}, name: 驿站{i}, kind: station}}" for i in range(3000)]
    path = tmp_path / "orgs.yaml"
    path.write_text("\n".join(rows), encoding="utf-8")
    result = runner.invoke(args=["orgs", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count(Organisation.id))) == 3001


def test_orgs_import_refuses_a_bad_file_whole_with_line_numbers(app_ctx, runner, tmp_path):
    path = tmp_path / "orgs.csv"
    path.write_text(
        "code,name,kind\nsx,山西省,province\nSX.BAD,x,city\nsx.a.b,孤儿,station\n"
        "sx.c,,city\nsx.d,丁,planet\n",
        encoding="utf-8",
    )
    result = runner.invoke(args=["orgs", "import", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3: bad organisation code 'SX.BAD'" in result.output
    assert f"{path}:4: sx.a.b: parent sx.a is unknown" in result.output
    assert f"{path}:5: sx.c needs a name" in result.output
    assert f"{path}:6: sx.d: unknown kind 'planet'" in result.output
    assert db.session.scalar(select(func.count(Organisation.id))) == 0


def test_orgs_import_needs_a_header(app_ctx, runner, tmp_path):
    path = tmp_path / "orgs.csv"
    path.write_text("sx,山西省\n", encoding="utf-8")
    result = runner.invoke(args=["orgs", "import", str(path)])
    assert result.exit_code == 1 and "the header must name the columns" in result.output


def test_db_upgrade_is_the_documented_command(runner):
    result = runner.invoke(args=["db", "--help"])
    assert result.exit_code == 0 and "upgrade" in result.output


def test_ledger_verify_reports_ok_and_broken(partner_api, rider, runner):
    from sqlalchemy import text

    from .partner_api import hazard

    partner_api.post_event(hazard("h1"))
    ok = runner.invoke(args=["ledger", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "ledger OK: 1 members, 1 entries, 0 problem(s)" in ok.output
    db.session.remove()
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_entries SET points = 99"))
    broken = runner.invoke(args=["ledger", "verify"])
    assert broken.exit_code == 1
    assert "content does not match its hash" in broken.output
    assert "ledger BROKEN: 1 members, 1 entries, 1 problem(s)" in broken.output


def test_ledger_verify_as_a_job_and_the_jobs_command(partner_api, rider, runner):
    from app.redis_client import is_embedded

    queued = runner.invoke(args=["ledger", "verify", "--queue"])
    assert queued.exit_code == 0, queued.output
    job_id = queued.output.split()[1]
    if not is_embedded():  # a real Redis: a worker runs it
        worker = runner.invoke(args=["worker", "--burst"])
        assert worker.exit_code == 0, worker.output
    shown = runner.invoke(args=["jobs", job_id])
    assert shown.exit_code == 0 and '"status": "finished"' in shown.output
    assert '"ok": true' in shown.output
    listed = runner.invoke(args=["jobs"])
    assert job_id in listed.output and "verify the ledger" in listed.output
    assert runner.invoke(args=["jobs", "nope"]).exit_code == 1


def test_the_worker_needs_redis_url_on_the_embedded_default(app_ctx, runner):
    from app.redis_client import is_embedded

    result = runner.invoke(args=["worker", "--burst"])
    if is_embedded():
        assert result.exit_code == 1 and "set REDIS_URL" in result.output
    else:
        assert result.exit_code == 0


def test_members_login_link_prints_a_link_that_opens_the_members_pages(
    app_ctx, partner_api, rider, runner
):
    result = runner.invoke(args=["members", "login-link", rider, "--partner", "meituan",
                                 "--base-url", "http://pp.example"])  # fmt: skip
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[0]
    assert url.startswith("http://pp.example/m/login/")
    client = app_ctx.test_client()
    assert client.get(url.removeprefix("http://pp.example")).status_code == 302
    assert client.get("/m/").status_code == 200
    unknown = runner.invoke(args=["members", "login-link", "nobody", "--partner", "meituan"])
    assert unknown.exit_code != 0 and "nobody" in unknown.output


def test_members_erase_by_reference_or_id_needs_yes_and_a_second_time_changes_nothing(
    app_ctx, partner_api, rider, runner
):
    from app.models import AuditEntry, Member, PartnerMember

    member_id = db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == rider))
    args = ["members", "erase", rider, "--partner", "meituan", "--reason", "本人书面申请删除"]
    declined = runner.invoke(args=args, input="n\n")
    assert declined.exit_code != 0 and db.session.get(Member, member_id).erased_at is None
    result = runner.invoke(args=[*args, "--yes"])
    assert result.exit_code == 0, result.output
    assert f"member {member_id}: personal data erased" in result.output
    assert "partner refs: 1" in result.output and "张小华" not in result.output
    member = db.session.get(Member, member_id)
    db.session.refresh(member)
    assert member.display_name == "匿名" and member.phone_hash is None
    audit = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "member.erase"))
    assert (audit.username, audit.after["reason"]) == ("cli", "本人书面申请删除")
    again = runner.invoke(args=["members", "erase", str(member_id), "--reason", "再次申请删除",
                                "--yes"])  # fmt: skip
    assert again.exit_code == 0 and "erased before" in again.output and "nothing" in again.output
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 1
    gone = runner.invoke(args=[*args, "--yes"])  # the reference no longer names anyone
    assert gone.exit_code != 0 and "no member" in gone.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["424242", "--reason", "本人书面申请删除"], "no member 424242"),
        (["r1", "--reason", "本人书面申请删除"], "needs --partner"),
        (["r1", "--partner", "nobody", "--reason", "本人书面申请删除"], "no partner"),
        (["r1", "--partner", "meituan", "--reason", "短"], "reason"),
        (["r1", "--partner", "meituan", "--reason", "张小华本人申请"], "must not contain"),
    ],
)
def test_members_erase_refuses_and_changes_nothing(app_ctx, partner_api, rider, runner, args,
                                                   message):  # fmt: skip
    from app.models import AuditEntry, Member

    result = runner.invoke(args=["members", "erase", *args, "--yes"])
    assert result.exit_code != 0 and message in result.output, result.output
    assert db.session.scalar(select(func.count()).where(Member.erased_at.is_not(None))) == 0
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0
