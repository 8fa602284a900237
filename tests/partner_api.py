"""The partner API helper (a pytest plugin, see tests/conftest.py): a partner with a key, a
small organisation tree, members, and event bodies."""

from __future__ import annotations

import datetime as dt

import pytest

from app.extensions import db
from app.services.orgs import import_orgs
from app.services.partners import create_partner

from .conftest import local

ORGS = [
    ("sx", "山西省", "province"),
    ("sx.ty", "太原市", "city"),
    ("sx.ty.xiaodian", "小店区", "district"),
    ("sx.ty.xiaodian.pingyang", "平阳路街道", "street"),
    ("sx.ty.xiaodian.pingyang.station-01", "平阳路暖心驿站", "station"),
    ("sx.dt", "大同市", "city"),
    ("sx.dt.pingcheng", "平城区", "district"),
    ("ind", "行业党委", "industry"),
    ("ind.delivery", "网络餐饮外卖行业党委", "industry"),
    ("ind.express", "快递行业党委", "industry"),
]
STATION = "sx.ty.xiaodian.pingyang.station-01"
# Members live in Datong by default: only the province's rules apply there, none of them
# depending on the weekday, so expected points do not change with the day the tests run.
HOME = "sx.dt.pingcheng"


class PartnerApi:
    """Calls the API as one partner."""

    def __init__(self, client, key: str):
        self.client = client
        self.key = key
        self.headers = {"Authorization": f"Bearer {key}"}

    def put_member(self, ref: str, **body):
        body.setdefault("name", "张小华")
        body.setdefault("primary_org", HOME)
        return self.client.put(f"/api/v1/members/{ref}", json=body, headers=self.headers)

    def get_member(self, ref: str):
        return self.client.get(f"/api/v1/members/{ref}", headers=self.headers)

    def ledger(self, ref: str, **query):
        return self.client.get(
            f"/api/v1/members/{ref}/ledger", query_string=query, headers=self.headers
        )

    def post_event(self, body: dict, **query):
        return self.client.post(
            "/api/v1/events", json=body, query_string=query, headers=self.headers
        )

    def post_batch(self, events: list, **query):
        return self.client.post(
            "/api/v1/events/batch", json={"events": events}, query_string=query,
            headers=self.headers,
        )  # fmt: skip


def shift(event_id: str, member: str = "r1", hours: float = 3, days_ago: float = 1, **extra):
    """A pioneer-post shift that started at 09:00 local ``days_ago`` days back."""
    start = local(days_ago, 9)
    end = start + dt.timedelta(hours=hours)
    body = {
        "id": event_id,
        "type": "pioneer.shift",
        "member": member,
        "occurred_at": start.isoformat(),
        "data": {"hours": hours, "start": start.isoformat(), "end": end.isoformat()},
    }
    body.update(extra)
    return body


def hazard(event_id: str, member: str = "r1", severity: str = "high", days_ago: float = 1, **extra):
    body = {
        "id": event_id,
        "type": "governance.hazard_report",
        "member": member,
        "occurred_at": local(days_ago, 11).isoformat(),
        "data": {"severity": severity},
    }
    body.update(extra)
    return body


@pytest.fixture
def orgs(app_ctx):
    import_orgs([(i + 1, {"code": c, "name": n, "kind": k}) for i, (c, n, k) in enumerate(ORGS)])
    db.session.commit()


@pytest.fixture
def partner_api(client, orgs) -> PartnerApi:
    _, key = create_partner("美团", code="meituan")
    db.session.commit()
    return PartnerApi(client, key)


@pytest.fixture
def other_api(client, orgs) -> PartnerApi:
    _, key = create_partner("饿了么", code="eleme")
    db.session.commit()
    return PartnerApi(client, key)


@pytest.fixture
def rider(partner_api) -> str:
    response = partner_api.put_member("r1", phone="13800138000", industry="delivery")
    assert response.status_code == 201, response.json
    return "r1"


def volunteer(event_id: str, member: str = "r1", hours: float = 4, days_ago: float = 1,
              hour: int = 8) -> dict:  # fmt: skip
    """Volunteer hours that started at ``hour``:00 local ``days_ago`` days back; the shipped
    rules make them wait for verification."""
    start = local(days_ago, hour)
    return {
        "id": event_id,
        "type": "volunteer.hours",
        "member": member,
        "occurred_at": start.isoformat(),
        "data": {"hours": hours, "start": start.isoformat(),
                 "end": (start + dt.timedelta(hours=hours)).isoformat()},
    }  # fmt: skip
