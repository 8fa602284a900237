"""The badges page: badges held with their count, reason and date, and those still ahead with
their progress, in the page's language."""

from __future__ import annotations

import re

from ..partner_api import shift
from .conftest import text_of


def _section(response, heading_id: str) -> str:
    """The HTML of the page's section labelled by ``heading_id``."""
    html = response.get_data(as_text=True)
    match = re.search(rf'<section aria-labelledby="{heading_id}">(.*?)</section>', html, re.S)
    assert match, heading_id
    return match.group(1)


def _ten_shifts(api) -> None:
    for day in range(1, 11):
        response = api.post_event(shift(f"s{day}", days_ago=day))
        assert response.status_code == 201, response.json


def test_the_page_needs_a_session(client, rider):
    response = client.get("/m/badges")
    assert response.status_code == 401 and "请先登录" in text_of(response)


def test_a_new_member_has_none_and_sees_every_badge_ahead(web):
    response = web.get("/m/badges")
    assert response.status_code == 200
    assert "还没有徽章" in text_of(response)
    ahead = _section(response, "ahead-h")
    assert 'class="locked"' in ahead
    assert "先锋十班" in ahead and "完成 10 次党员先锋岗值守" in ahead
    assert "0 / 10" in ahead and 'role="progressbar"' in ahead
    assert "志愿五十小时" in ahead and "0 / 50" in ahead
    # rank badges are decided when a period closes: no bar, a word on how they are earned
    street = re.search(r"<li class=\"locked\">\s*<h3[^>]*>街道月度前十</h3>(.*?)</li>", ahead, re.S)
    assert street and "周期结束时评定" in street.group(1) and "progressbar" not in street.group(1)


def test_progress_towards_a_badge(web, partner_api):
    for day in range(1, 4):
        partner_api.post_event(shift(f"s{day}", days_ago=day))
    ahead = _section(web.get("/m/badges"), "ahead-h")
    assert "3 / 10" in ahead and 'aria-valuenow="3"' in ahead and '<rect width="30"' in ahead


def test_an_earned_badge_shows_its_count_reason_and_date_and_the_next_grant(web, partner_api):
    _ten_shifts(partner_api)
    response = web.get("/m/badges")
    held = _section(response, "held-h")
    assert "已获得（1）" in text_of(response)
    assert "先锋十班" in held and "×1" in held  # repeatable: the count is shown
    assert "第 10 次党员先锋岗值守" in held and "获得于" in held
    assert "10 / 20" in held  # on the way to the second grant
    assert "先锋十班" not in _section(response, "ahead-h")


def test_the_badges_follow_the_page_language(web, partner_api):
    _ten_shifts(partner_api)
    web.get("/m/lang/en?next=/m/badges")
    response = web.get("/m/badges")
    html = response.get_data(as_text=True)
    assert 'lang="en"' in html
    assert "Ten pioneer shifts" in html and "Served 10 shifts on a pioneer post" in html
    assert "50 volunteer hours" in html
    assert "先锋十班" not in html
    # a badge without an English description keeps its Chinese one
    assert "累计志愿服务 50 小时" in html


def test_a_member_sees_only_its_own_badges(app_ctx, partner_api, web):
    _ten_shifts(partner_api)
    from .conftest import sign_in

    partner_api.put_member("r2", name="李大明")
    other = sign_in(app_ctx, partner_api, "r2")
    response = other.get("/m/badges")
    assert "还没有徽章" in text_of(response) and "第 10 次" not in text_of(response)
