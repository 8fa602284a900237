"""Getting in: login links work once and only for a while, sessions are the member's own,
forms need their CSRF token, and anything wrong gets a readable page."""

import datetime as dt

from sqlalchemy import select

from app.extensions import db
from app.models import LoginToken

from .conftest import login_link, sign_in, text_of


def test_a_login_link_opens_the_members_home_page(app_ctx, partner_api, rider):
    link = login_link(partner_api, rider)
    client = app_ctx.test_client()
    response = client.get(link)
    assert response.status_code == 302 and response.headers["Location"].endswith("/m/")
    cookie = response.headers["Set-Cookie"]
    assert "pp_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    home = client.get("/m/")
    assert home.status_code == 200
    assert "张*华" in text_of(home)  # the masked name, never the full one in the header


def test_a_link_works_once(app_ctx, partner_api, rider):
    link = login_link(partner_api, rider)
    assert app_ctx.test_client().get(link).status_code == 302
    again = app_ctx.test_client().get(link)
    assert again.status_code == 403
    assert "已经用过" in text_of(again) and "Traceback" not in text_of(again)


def test_an_expired_link_is_refused_kindly(app_ctx, partner_api, rider):
    link = login_link(partner_api, rider)
    row = db.session.scalar(select(LoginToken))
    row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    db.session.commit()
    response = app_ctx.test_client().get(link)
    assert response.status_code == 403 and "已过期" in text_of(response)
    assert db.session.scalar(select(LoginToken.used_at)) is None


def test_a_forged_or_altered_link_is_refused(app_ctx, partner_api, rider):
    link = login_link(partner_api, rider)
    head, _, signature = link.rpartition(".")
    forged = head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    for bad in (forged, "/m/login/nonsense", "/m/login/" + "x" * 300):
        response = app_ctx.test_client().get(bad)
        assert response.status_code == 403 and "无效" in text_of(response)


def test_pages_need_a_session(app_ctx, partner_api, rider):
    response = app_ctx.test_client().get("/m/")
    assert response.status_code == 401 and "请先登录" in text_of(response)


def test_a_form_without_its_csrf_token_is_refused(web):
    response = web.client.post("/m/logout", data={})
    assert response.status_code == 400 and "页面已过期" in text_of(response)
    assert web.get("/m/").status_code == 200  # still signed in
    assert web.post("/m/logout").status_code == 200
    assert web.get("/m/").status_code == 401


def test_a_partner_gets_links_only_for_its_own_members(partner_api, other_api, rider):
    response = other_api.client.post("/api/v1/members/r1/login-link", headers=other_api.headers)
    assert response.status_code == 404 and response.json["error"]["code"] == "unknown_member"


def test_two_members_each_see_only_themselves(app_ctx, partner_api, rider):
    partner_api.put_member("r2", name="李大明")
    first = sign_in(app_ctx, partner_api, "r1")
    second = sign_in(app_ctx, partner_api, "r2")
    assert "张*华" in text_of(first.get("/m/")) and "李*明" not in text_of(first.get("/m/"))
    assert "李*明" in text_of(second.get("/m/"))


def test_the_language_switch_stays_on_this_site(web):
    response = web.get("/m/lang/en?next=https://evil.example/")
    assert response.headers["Location"].endswith("/m/")
    assert 'lang="en"' in web.get("/m/").get_data(as_text=True)
    web.get("/m/lang/zh?next=/m/")
    assert 'lang="zh-CN"' in web.get("/m/").get_data(as_text=True)


def test_the_browser_language_is_followed_until_the_rider_chooses(app_ctx, partner_api, rider):
    rider_ = sign_in(app_ctx, partner_api, rider)
    page = rider_.get("/m/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert 'lang="en"' in page.get_data(as_text=True)
    page = rider_.get("/m/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert 'lang="zh-CN"' in page.get_data(as_text=True)


def test_an_unknown_page_is_a_readable_page_not_json(web):
    response = web.get("/m/nothing-here")
    assert response.status_code == 404
    assert response.content_type.startswith("text/html") and "找不到" in text_of(response)


def test_the_session_cookie_is_sent_again_hourly_so_it_slides_with_use(web, monkeypatch):
    import app.sessions as sessions

    assert "Set-Cookie" not in web.get("/m/").headers  # just signed in: nothing to refresh
    later = sessions.time.time() + 3601
    monkeypatch.setattr(sessions.time, "time", lambda: later)
    refreshed = web.get("/m/")
    assert refreshed.status_code == 200
    cookie = refreshed.headers["Set-Cookie"]
    assert "pp_session=" in cookie and "Expires=" in cookie
    assert "Set-Cookie" not in web.get("/m/").headers  # and not again within the hour
    web.post("/m/logout")  # a change is sent at once: signed out
    assert web.get("/m/").status_code == 401
