"""The volunteer-hours certificate: a year's verified hours on a printable page with a code,
one code per (member, year, hours), and the public check that shows only the masked name, the
hours and the year."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Certificate, Member, Partner, PartnerMember
from app.services import certificates

from ..conftest import TZ, local
from ..factories import EventFactory
from .conftest import sign_in, text_of

THIS_YEAR = dt.datetime.now(TZ).year
LAST_YEAR = THIS_YEAR - 1


def _member_id(ref: str = "r1") -> int:
    return db.session.scalar(select(PartnerMember.member_id).where(PartnerMember.ref == ref))


def served(hours: float, at: dt.datetime | None = None, status: str = "awarded", ref: str = "r1",
           type_: str = "volunteer.hours"):  # fmt: skip
    """A volunteer event of the member's (``at``: local time; by default earlier today)."""
    at = at or local(0, 0)
    EventFactory(
        partner_id=db.session.scalar(select(Partner.id)), member_id=_member_id(ref), type=type_,
        occurred_at=at, status=status,
        data={"hours": hours, "start": at.isoformat(), "end": at.isoformat()},
    )  # fmt: skip
    db.session.commit()


def _code(response) -> str | None:
    match = re.search(r'<span class="code">([A-Z0-9]+)</span>', response.get_data(as_text=True))
    return match.group(1) if match else None


def _certificates() -> int:
    return db.session.scalar(select(func.count()).select_from(Certificate))


def test_the_page_needs_a_session(client, rider):
    response = client.get("/m/certificate")
    assert response.status_code == 401 and "请先登录" in text_of(response)


def test_verified_hours_of_the_year_with_the_full_name_and_a_code(web):
    served(3.5)
    served(2)
    served(4, status="pending")  # not verified yet: mentioned, not counted
    served(6, status="rejected")
    served(8, type_="pioneer.shift")  # hours, but not volunteering
    served(5, at=dt.datetime(LAST_YEAR, 6, 1, 9, tzinfo=TZ))  # another year
    response = web.get("/m/certificate")
    assert response.status_code == 200
    text = text_of(response)
    assert f"在 {THIS_YEAR} 年参加志愿服务" in text and "共计 5.5 小时" in text
    assert "张小华" in text  # the member's own certificate: the full name
    assert "另有 4 小时正在等待组织确认" in text
    code = _code(response)
    assert code and len(code) == certificates.CODE_LENGTH
    assert set(code) <= set(certificates.CODE_ALPHABET)
    assert f"http://localhost/verify/{code}" in response.get_data(as_text=True)
    assert "签发日期" in text
    assert "13800138000" not in response.get_data(as_text=True)


def test_the_same_hours_give_the_same_code_and_new_hours_a_new_one(web):
    served(3)
    first = _code(web.get("/m/certificate"))
    assert _code(web.get("/m/certificate")) == first and _certificates() == 1
    served(1.5)
    second = _code(web.get("/m/certificate"))
    assert second != first and _certificates() == 2
    assert "共计 4.5 小时" in text_of(web.get("/m/certificate"))
    assert _code(web.get("/m/certificate")) == second and _certificates() == 2
    # the first code still states what it was issued for
    assert "3 小时" in text_of(web.client.get(f"/verify/{first}"))


def test_no_code_without_verified_hours(web):
    served(4, status="pending")
    response = web.get("/m/certificate")
    assert response.status_code == 200 and _code(response) is None
    text = text_of(response)
    assert "还没有经组织确认的志愿服务时长" in text and "另有 4 小时正在等待组织确认" in text
    assert _certificates() == 0


def test_pending_hours_from_the_partner_api_are_not_certified(web, partner_api):
    start = local(0, 0)
    body = {"id": "v1", "type": "volunteer.hours", "member": "r1", "occurred_at": start.isoformat(),
            "data": {"hours": 3, "start": start.isoformat(),
                     "end": (start + dt.timedelta(hours=3)).isoformat()}}  # fmt: skip
    response = partner_api.post_event(body)
    assert response.status_code == 201 and response.json["status"] == "pending", response.json
    text = text_of(web.get("/m/certificate"))
    assert "另有 3 小时正在等待组织确认" in text and _certificates() == 0


def test_years_with_volunteering_are_offered_and_each_has_its_hours(web):
    served(2)
    served(5, at=dt.datetime(LAST_YEAR, 6, 1, 9, tzinfo=TZ))
    # local New Year's morning is still the old year in UTC: it counts for the local year
    served(1, at=dt.datetime(LAST_YEAR, 1, 1, 0, 30, tzinfo=TZ))
    html = web.get("/m/certificate").get_data(as_text=True)
    assert f'<option value="{THIS_YEAR}" selected>' in html
    assert f'<option value="{LAST_YEAR}">' in html
    assert f'<option value="{LAST_YEAR - 1}">' not in html
    response = web.get("/m/certificate", query_string={"year": LAST_YEAR})
    text = text_of(response)
    assert f"在 {LAST_YEAR} 年参加志愿服务" in text and "共计 6 小时" in text
    assert _code(response) != _code(web.get("/m/certificate"))


@pytest.mark.parametrize("year", ["abc", "1999", str(THIS_YEAR + 1), ""])
def test_a_year_not_offered_shows_this_year(web, year):
    served(2)
    response = web.get("/m/certificate", query_string={"year": year})
    assert response.status_code == 200
    assert f'<option value="{THIS_YEAR}" selected>' in response.get_data(as_text=True)
    assert "共计 2 小时" in text_of(response)


def test_a_member_sees_only_its_own_hours(app_ctx, partner_api, web):
    served(7)
    partner_api.put_member("r2", name="李大明")
    other = sign_in(app_ctx, partner_api, "r2")
    response = other.get("/m/certificate")
    assert _code(response) is None and "张小华" not in response.get_data(as_text=True)


def test_anyone_can_check_a_code_and_sees_only_the_masked_name_hours_and_year(app_ctx, web):
    served(3.5)
    code = _code(web.get("/m/certificate"))
    response = app_ctx.test_client().get(f"/verify/{code}")  # no session
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    text = text_of(response)
    assert "证明有效" in text and "张*华" in text and "3.5 小时" in text and str(THIS_YEAR) in text
    assert "张小华" not in html and "13800138000" not in html and "r1" not in html
    assert 'class="main"' not in html  # no member, no menu
    assert 'lang="zh-CN"' in html
    # typed in lower case, it is the same code
    assert app_ctx.test_client().get(f"/verify/{code.lower()}").status_code == 200


def test_the_check_follows_the_browser_language(app_ctx, web):
    served(1)
    code = _code(web.get("/m/certificate"))
    response = app_ctx.test_client().get(f"/verify/{code}", headers={"Accept-Language": "en"})
    assert 'lang="en"' in response.get_data(as_text=True)


@pytest.mark.parametrize("code", ["ABCDEFGHJK", "nothing", "0000000000", "<script>x"])
def test_an_unknown_code_is_a_friendly_not_found_page(client, rider, code):
    response = client.get(f"/verify/{code}")
    assert response.status_code == 404
    assert response.content_type.startswith("text/html")
    assert "找不到这个证明" in text_of(response)
    assert "<script>x" not in response.get_data(as_text=True)


def test_a_hidden_members_certificate_still_checks_with_its_masked_name(app_ctx, partner_api, web):
    served(2)
    partner_api.put_member("r1", hide_from_boards=True)
    code = _code(web.get("/m/certificate"))
    assert "张*华" in text_of(app_ctx.test_client().get(f"/verify/{code}"))
    assert db.session.get(Member, _member_id()).hidden is True
