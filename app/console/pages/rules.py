"""Rules: the effective rules for the user's organisation, and a new version of its own file
from upload to force: check (errors by line) → simulation (an RQ job; its page shows progress
and refreshes itself until done) → publish (optionally recalculating since a date, as jobs
whose page shows their progress).

Everyone reads; checking and publishing need the ``rules`` action and only ever concern the
user's own organisation's file: the forms have no organisation to tamper with, a simulation or
recalculation page is found only by the organisation that started it, and publishing takes the
text of the simulation it names, so what is published is what was simulated.
"""

from __future__ import annotations

from datetime import date

from flask import abort, render_template, request
from flask_babel import gettext as _
from rq.job import Job

from ...engine.ruleset import ancestors
from ...errors import Conflict
from ...extensions import db
from ...jobs.rules import enqueue_recalculation, enqueue_simulation
from ...redis_client import get_redis
from ...services import console_users, rules_check
from ...services.rules import current_rules, version_in_force
from .. import bp
from .common import current_user, user_required


def _page(text: str | None = None, error: str | None = None, status: int = 200):
    user = current_user()
    ruleset = current_rules()
    org = user.org_code
    file_org = ruleset.file_org_for(org)
    chain = ruleset.chains.get(file_org, ()) if file_org else ()
    files = [ruleset.files[c] for c in ancestors(org) if c in ruleset.files]
    rewards = [r for c in ancestors(org) for r in ruleset.rewards_at(c)]
    own = rules_check.own_file(org)
    return render_template(
        "console/rules.html",
        org=org,
        version=ruleset.version,
        file_org=file_org,
        files=files,
        chain=chain,
        levels=ruleset.levels_for(org),
        badges=ruleset.badges_for(org),
        rewards=rewards,
        has_file=own is not None,
        text=(own or "") if text is None else text,
        error=error,
        can_check=console_users.may(user, "rules"),
        max_kb=rules_check.MAX_BYTES // 1024,
    ), status


@bp.route("/rules", methods=["GET"])
@user_required()
def rules():
    return _page()


def _candidate() -> tuple[str | None, str | None]:
    """The uploaded file, else the text typed; and what is wrong with it (or None)."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.stream.read(rules_check.MAX_BYTES + 1)
    else:
        raw = request.form.get("text", "").encode("utf-8")
    if len(raw) > rules_check.MAX_BYTES:
        return None, _("文件不能超过 %(kb)s KB。", kb=rules_check.MAX_BYTES // 1024)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, _("文件必须是 UTF-8 编码的 YAML。")
    if not text.strip():
        return None, _("请粘贴规则文件的内容，或选择一个文件。")
    return text.replace("\r\n", "\n"), None


@bp.route("/rules/check", methods=["POST"])
@user_required("rules")
def rules_check_page():
    user = current_user()
    text, error = _candidate()
    if error:
        return _page(request.form.get("text", "")[: rules_check.MAX_BYTES], error, 400)
    check = rules_check.check_candidate(user.org_code, text, by=user)
    db.session.commit()
    if check.candidate is None:
        return render_template("console/rules_check.html", check=check, job=None), 422
    job = enqueue_simulation(user.org_code, text, check.base, user.id)
    return render_template("console/rules_check.html", check=check, job=job.id)


def _job(job_id: str, kind: str) -> Job:
    """A job of ``kind`` started by the user's organisation, else 404 (whoever asks)."""
    try:
        job = Job.fetch(job_id, connection=get_redis())
    except Exception:  # NoSuchJobError, or an id that is not one
        abort(404)
    if job.meta.get("kind") != kind or job.meta.get("org") != current_user().org_code:
        abort(404)
    return job


@bp.route("/rules/simulations/<job_id>", methods=["GET"])
@user_required("rules")
def rules_simulation(job_id: str):
    job = _job(job_id, "simulation")
    if not job.is_finished:
        return render_template("console/rules_job.html", job=job, title=_("模拟"))
    result = job.return_value()
    in_force = version_in_force()
    return render_template("console/rules_simulation.html", job=job, sim=result,
                           in_force=in_force, can_publish=job.args[2] == in_force,
                           today=date.today())  # fmt: skip


@bp.route("/rules/publish", methods=["POST"])
@user_required("rules")
def rules_publish():
    user = current_user()
    job = _job(request.form.get("job", ""), "simulation")
    if not job.is_finished:
        abort(400)
    since = None
    if request.form.get("recalculate_from"):
        try:
            since = date.fromisoformat(request.form["recalculate_from"])
        except ValueError:
            since = None
        if since is None or since > date.today():
            text = _("重新计分的开始日期不对：请填写今天或以前的日期。")
            return render_template("console/message.html", heading=_("无法发布"), text=text), 400
    note = request.form.get("note", "").strip()[:200] or None
    text, base = job.args[1], job.args[2]
    try:
        ruleset = rules_check.publish_candidate(user, text, base, note)
    except Conflict as exc:
        db.session.rollback()
        return render_template("console/message.html", heading=_("无法发布"),
                               text=_("检查之后又发布了规则版本 %(v)s：请重新检查和模拟。",
                                      v=exc.details["in_force"])), 409  # fmt: skip
    db.session.commit()
    jobs = []
    if since is not None:
        meta = {"org": user.org_code, "kind": "recalculation"}
        jobs = enqueue_recalculation(ruleset.version, since, meta=meta)
    return render_template("console/rules_published.html", version=ruleset.version,
                           since=since, jobs=jobs)  # fmt: skip


@bp.route("/rules/recalculations/<job_id>", methods=["GET"])
@user_required("rules")
def rules_recalculation(job_id: str):
    job = _job(job_id, "recalculation")
    return render_template("console/rules_job.html", job=job, title=_("重新计分"))
