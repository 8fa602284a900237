"""Leaderboard jobs and their commands: rebuild (with drift), close periods, the scheduler."""

import datetime as dt

from sqlalchemy import func, select

from app.extensions import db
from app.jobs import job_status
from app.jobs.boards import enqueue_rebuild
from app.jobs.schedule import reconcile_cron, scheduler
from app.models import BoardArchive, BoardPeriod, LedgerEntry
from app.redis_client import get_redis
from app.services.boards.keys import board_key

from ..partner_api import hazard
from .test_jobs import run_queued_jobs


def _all_board(scope: str = "sx") -> list:
    return get_redis().zrange(board_key(scope, "all", "total"), 0, -1, withscores=True)


def test_rebuild_repairs_a_damaged_board_and_reports_the_drift(partner_api, rider, runner):
    partner_api.post_event(hazard("h1"))
    partner_api.post_event(hazard("h2", days_ago=2))
    before = _all_board()
    assert len(before) == 1
    redis = get_redis()
    redis.zadd(board_key("sx", "all", "total"), {"999": 5.0})  # a line the ledger never had
    redis.delete(board_key("sx.dt", "all", "total"))  # a lost board
    result = runner.invoke(args=["boards", "rebuild"])
    assert result.exit_code == 0, result.output
    assert "drift: 2 line(s) on 2 board(s)" in result.output
    assert _all_board() == before
    assert _all_board("sx.dt") == before
    again = runner.invoke(args=["boards", "rebuild"])
    assert "drift: 0 line(s) on 0 board(s)" in again.output


def test_a_queued_rebuild_runs_and_its_outcome_is_visible(partner_api, rider, runner):
    partner_api.post_event(hazard("h1"))
    get_redis().flushdb()  # Redis lost everything
    job = enqueue_rebuild("test")
    run_queued_jobs()
    status = job_status(job.id)
    assert status["status"] == "finished", status
    assert status["result"]["reason"] == "test"
    assert status["result"]["boards"] > 0 and status["result"]["drift_lines"] > 0
    points = db.session.scalar(select(func.sum(LedgerEntry.points)))
    assert [int(score) for _, score in _all_board()] == [points]


def test_close_archives_last_weeks_boards_once(partner_api, rider, runner):
    # exactly a week ago is always in the previous ISO week, which has ended
    partner_api.post_event(hazard("h1", days_ago=7))
    result = runner.invoke(args=["boards", "close"])
    assert result.exit_code == 0, result.output
    closed = db.session.scalars(select(BoardPeriod.period)).all()
    week = [p for p in closed if "-W" in p]
    assert len(week) == 1 and week[0] in result.output
    lines = db.session.scalars(
        select(BoardArchive).where(
            BoardArchive.board == "lb", BoardArchive.scope == "sx", BoardArchive.period == week[0],
            BoardArchive.category == "total",
        )
    ).all()  # fmt: skip
    points = db.session.scalar(select(func.sum(LedgerEntry.points)))
    assert [(a.rank, a.points) for a in lines] == [(1, points)]
    ranks = partner_api.client.get(
        f"/api/v1/members/{rider}/ranks",
        query_string={"period": week[0], "category": "total"},
        headers=partner_api.headers,
    ).json["boards"]  # read from the archive now
    sx = next(b for b in ranks if b["scope"] == "sx")
    assert (sx["rank"], sx["points"], sx["total"], sx["above"], sx["below"]) == (
        1, points, 1, None, None,
    )  # fmt: skip
    assert {b["period"] for b in ranks} == {week[0]}
    again = runner.invoke(args=["boards", "close"])
    assert "closed: none" in again.output
    assert db.session.scalar(select(func.count(BoardPeriod.period))) == len(closed)


def test_show_prints_the_top_of_a_board(partner_api, rider, runner):
    partner_api.post_event(hazard("h1"))
    result = runner.invoke(args=["boards", "show", "sx", "--period", "all"])
    assert result.exit_code == 0, result.output
    assert "sx all total: 1 ranked" in result.output and "张*华" in result.output
    bad = runner.invoke(args=["boards", "show", "sx", "--period", "2026-W99"])
    assert bad.exit_code != 0 and "not a period" in bad.output


def test_the_nightly_reconciliation_runs_at_half_past_three_local_time():
    assert reconcile_cron("Asia/Shanghai", dt.date(2026, 11, 30)) == "30 19 * * *"
    assert reconcile_cron("UTC", dt.date(2026, 11, 30)) == "30 3 * * *"


def test_the_scheduler_closes_periods_reconciles_and_expires(app_ctx):
    jobs = {job.func_name: job for job in scheduler()._cron_jobs}
    assert set(jobs) == {
        "app.jobs.boards.close_periods_job",
        "app.jobs.boards.rebuild_boards_job",
        "app.jobs.rewards.expire_redemptions_job",
        "app.jobs.rewards.expire_points_job",
    }
    assert jobs["app.jobs.boards.close_periods_job"].interval == 300
    assert jobs["app.jobs.boards.rebuild_boards_job"].cron == "30 19 * * *"
    assert jobs["app.jobs.rewards.expire_redemptions_job"].interval == 300
    assert jobs["app.jobs.rewards.expire_points_job"].cron == "20 16 * * *"  # 00:20 local
    assert jobs["app.jobs.rewards.expire_points_job"].queue_name == "default"


def test_the_scheduler_needs_a_real_redis(app_ctx, runner, monkeypatch):
    monkeypatch.setitem(app_ctx.config, "REDIS_URL", None)
    result = runner.invoke(args=["scheduler"])
    assert result.exit_code != 0 and "REDIS_URL" in result.output


def test_a_new_process_on_the_embedded_default_rebuilds_its_boards(app, partner_api, rider):
    from app import create_app
    from app.services.boards import read

    partner_api.post_event(hazard("h1"))
    points = db.session.scalar(select(func.sum(LedgerEntry.points)))
    db.session.commit()
    # another process (the server after `demo seed`, say) has its own, empty stand-in
    other = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": None,
                        "RULES_DIR": app.config["RULES_DIR"]})  # fmt: skip
    with other.app_context():
        total, lines = read.page(get_redis(), "sx", "all", "total", 10, 0)
        assert (total, [line.points for line in lines]) == (1, [points])
        db.session.remove()
