"""Exports in the console: member points and redemptions of one month of the subtree, as CSV
(with a byte-order mark) and XLSX, each written to the audit log; nothing from another
subtree or another month, whatever the URL."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from app.engine.periods import zone
from app.extensions import db
from app.models import AuditEntry

from ..factories import LedgerEntryFactory, MemberFactory, RedemptionFactory
from .test_dashboard import org_id, staff

NOW = dt.datetime.now(dt.UTC)
MONTH = f"{NOW.astimezone(zone('Asia/Shanghai')):%Y-%m}"
HEADER = ["骑手编号", "姓名", "组织编码", "组织名称", "先锋岗位", "基层治理", "志愿服务", "其他",
          "合计"]  # fmt: skip


@pytest.fixture
def month_data(orgs) -> dict:
    a = MemberFactory(display_name="张三丰", primary_org_id=org_id("sx.dt.pingcheng"))
    b = MemberFactory(display_name="李四", primary_org_id=org_id("sx.dt"))
    d = MemberFactory(display_name="赵太原", primary_org_id=org_id("sx.ty.xiaodian"))
    entries = [
        (a, "award", "pioneer", 30, "sx.dt.pingcheng", NOW),
        (a, "award", "volunteer", 5, "sx.dt.pingcheng", NOW),
        (a, "award", "pioneer", 10, "sx.dt.pingcheng", NOW),
        (a, "redeem", "other", -5, "sx.dt.pingcheng", NOW),  # spending: not earned points
        (a, "award", "pioneer", 77, "sx.dt.pingcheng", NOW - dt.timedelta(days=40)),
        (b, "adjust", "other", 7, "sx.dt", NOW),
        (d, "award", "pioneer", 100, "sx.ty.xiaodian", NOW),
        (d, "award", "pioneer", 100, "sx.dtx", NOW),
    ]
    for seq, (member, kind, category, points, org, at) in enumerate(entries, 1):
        LedgerEntryFactory(member_id=member.id, seq=seq, kind=kind, category=category,
                           points=points, org_code=org, occurred_at=at)  # fmt: skip
    RedemptionFactory(code="DT0001", member_id=a.id, org_code="sx.dt.pingcheng",
                      name="热饮一杯", status="confirmed", decided_at=NOW, cost=5)  # fmt: skip
    RedemptionFactory(code="DT0002", member_id=a.id, org_code="sx.dt.pingcheng",
                      created_at=NOW - dt.timedelta(days=40))  # fmt: skip
    RedemptionFactory(code="TY0001", member_id=d.id)
    db.session.commit()
    return {"a": a.id, "b": b.id}


def rows_of_csv(response) -> list[list[str]]:
    body = response.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the Chinese right
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def rows_of_xlsx(response) -> list[list]:
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    return [[cell if cell is not None else "" for cell in row]
            for row in sheet.iter_rows(values_only=True)]  # fmt: skip


@pytest.mark.parametrize("role", ["admin", "verifier", "station", "viewer"])
def test_every_role_exports_its_subtree_as_csv(app_ctx, month_data, role):
    user = staff(app_ctx, role)
    assert "导出" in user.client.get("/console/exports").get_data(as_text=True)
    response = user.client.get(f"/console/exports/points?org=sx.dt&month={MONTH}&format=csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="points-sx.dt-{MONTH}.csv"'
    )
    a, b = month_data["a"], month_data["b"]
    assert rows_of_csv(response) == [
        HEADER,
        [str(a), "张*丰", "sx.dt.pingcheng", "平城区", "40", "0", "5", "0", "45"],
        [str(b), "李*", "sx.dt", "大同市", "0", "0", "0", "7", "7"],
    ]


def test_points_export_as_xlsx_and_for_a_part_of_the_subtree(app_ctx, month_data):
    user = staff(app_ctx)
    response = user.client.get(
        f"/console/exports/points?org=sx.dt.pingcheng&month={MONTH}&format=xlsx"
    )
    assert response.status_code == 200
    assert 'filename="points-sx.dt.pingcheng-' in response.headers["Content-Disposition"]
    assert rows_of_xlsx(response) == [
        HEADER, [month_data["a"], "张*丰", "sx.dt.pingcheng", "平城区", 40, 0, 5, 0, 45]
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_redemptions_of_the_month_are_exported(app_ctx, month_data, fmt):
    user = staff(app_ctx)
    response = user.client.get(f"/console/exports/redemptions?month={MONTH}&format={fmt}")
    assert response.status_code == 200
    rows = rows_of_csv(response) if fmt == "csv" else rows_of_xlsx(response)
    assert rows[0] == ["兑换码", "奖品", "驿站编码", "驿站名称", "状态", "兑换时间", "处理时间",
                       "积分"]  # fmt: skip
    assert len(rows) == 2  # not last month's, not Taiyuan's
    code, reward, station, name, status, created, decided, cost = rows[1]
    assert (code, reward, station, name, status) == ("DT0001", "热饮一杯", "sx.dt.pingcheng",
                                                     "平城区", "已领取")  # fmt: skip
    assert created.startswith(MONTH) and decided.startswith(MONTH) and str(cost) == "5"


def test_each_export_is_written_to_the_audit_log(app_ctx, month_data):
    user = staff(app_ctx, "viewer")
    user.client.get(f"/console/exports/points?month={MONTH}&format=xlsx")
    user.client.get(f"/console/exports/redemptions?org=sx.dt.pingcheng&month={MONTH}")
    entries = db.session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(e.username, e.action, e.org_code, e.after) for e in entries] == [
        ("viewer-user", "export.points", "sx.dt", {"org": "sx.dt", "month": MONTH,
                                                   "format": "xlsx"}),
        ("viewer-user", "export.redemptions", "sx.dt.pingcheng",
         {"org": "sx.dt.pingcheng", "month": MONTH, "format": "csv"}),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("points?org=sx.ty", 404),
        ("points?org=sx", 404),
        ("points?org=sx.dtx", 404),
        ("redemptions?org=sx.ty.xiaodian&format=xlsx", 404),
        ("members?org=sx.dt", 404),
        ("points?month=2026-13", 400),
        ("points?month=2026-W47", 400),
        ("points?format=pdf", 400),
    ],
)
def test_tampered_urls_export_nothing(app_ctx, month_data, query, status):
    user = staff(app_ctx)
    assert user.client.get(f"/console/exports/{query}").status_code == status
    assert db.session.scalar(select(AuditEntry.id)) is None


def test_exports_need_a_signed_in_user(app_ctx, orgs):
    response = app_ctx.test_client().get("/console/exports/points?org=sx")
    assert response.status_code == 302 and "/console/login" in response.headers["Location"]
