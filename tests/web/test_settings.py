"""Settings: the language and hiding from public boards are shown as they are, changed by the
form, and anything but the offered values is refused without changing anything."""

from __future__ import annotations

import re

import pytest

from app.extensions import db
from app.models import Member
from app.services.boards import read

from ..rewards_support import member_id
from .conftest import text_of


def _hidden(ref: str = "r1") -> bool:
    db.session.expire_all()
    return db.session.get(Member, member_id(ref)).hidden


def _checked(html: str) -> set[str]:
    """The names=values of the ticked inputs of the page's form."""
    found = set()
    for tag in re.findall(r"<input [^>]*>", html):
        if " checked" in tag:
            name = re.search(r'name="([^"]+)"', tag)[1]
            value = re.search(r'value="([^"]*)"', tag)[1]
            found.add(f"{name}={value}")
    return found


def test_the_page_shows_the_current_language_and_visibility(web):
    response = web.get("/m/settings")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert _checked(html) == {"lang=zh"}
    assert "不在公开榜单上显示我的名字" in text_of(response)
    assert "<legend>" in html and 'name="csrf"' in html
    english = web.get("/m/settings", headers={"Accept-Language": "en"})
    assert _checked(english.get_data(as_text=True)) == {"lang=en"}  # the browser's choice


def test_choosing_english_switches_the_pages(web):
    response = web.post("/m/settings", {"lang": "en"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/m/settings")
    page = web.get("/m/settings").get_data(as_text=True)
    assert 'lang="en"' in page and _checked(page) == {"lang=en"}
    assert 'lang="en"' in web.get("/m/").get_data(as_text=True)
    web.post("/m/settings", {"lang": "zh"})
    assert 'lang="zh-CN"' in web.get("/m/").get_data(as_text=True)


def test_hiding_from_the_boards_is_the_members_hidden_flag(web):
    web.post("/m/settings", {"lang": "zh", "hidden": "1"})
    assert _hidden() is True
    page = web.get("/m/settings")
    assert _checked(page.get_data(as_text=True)) == {"lang=zh", "hidden=1"}
    assert "设置已保存" in text_of(page)
    assert read.names([member_id("r1")]) == {member_id("r1"): read.HIDDEN_NAME}
    web.post("/m/settings", {"lang": "zh"})  # an unticked box sends nothing
    assert _hidden() is False


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"lang": "fr", "hidden": "1"}, "请选择一种语言"),
        ({"hidden": "1"}, "请选择一种语言"),
        ({"lang": "en", "hidden": "yes"}, "只能勾选或不勾选"),
    ],
)
def test_a_value_not_offered_is_refused_and_changes_nothing(web, form, message):
    response = web.post("/m/settings", form)
    assert response.status_code == 400
    assert message in text_of(response) and 'role="alert"' in response.get_data(as_text=True)
    assert _hidden() is False
    assert 'lang="zh-CN"' in web.get("/m/").get_data(as_text=True)
    with web.client.session_transaction() as session:
        assert "lang" not in session


def test_saving_needs_the_forms_csrf_token(web):
    response = web.client.post("/m/settings", data={"lang": "en", "hidden": "1"})
    assert response.status_code == 400 and "页面已过期" in text_of(response)
    assert _hidden() is False
    assert 'lang="zh-CN"' in web.get("/m/").get_data(as_text=True)


def test_settings_need_a_session(client, rider):
    assert client.get("/m/settings").status_code == 401
    # without a session there is no CSRF token to send: refused before the view
    assert client.post("/m/settings", data={"lang": "en"}).status_code == 400
