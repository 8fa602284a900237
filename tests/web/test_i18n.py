"""The rider pages in English: the catalogue translates every text the code marks (so a new
untranslated string fails here), the pages read in English with only the data left in Chinese,
and numbers and dates follow the locale.

The Chinese texts are the msgids (zh-CN is the source language); ``app/translations/en`` is
the English catalogue, compiled to the ``.mo`` flask-babel reads by ``scripts/lib/venv.sh``.
After changing a text: ``pybabel extract`` and ``pybabel update`` (see the commands below),
translate, ``pybabel compile -d app/translations``.
"""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from app.extensions import db
from app.models import (
    Appeal,
    BadgeGrant,
    Event,
    LedgerEntry,
    Member,
    Organisation,
    Partner,
    Redemption,
)
from app.services.boards.keys import mask_name
from app.services.rules import current_rules

from ..factories import EventFactory
from ..partner_api import hazard, shift
from ..rewards_support import give, member_id
from .conftest import text_of

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "app/translations/en/LC_MESSAGES/messages.po"
MO = PO.with_suffix(".mo")
# what `pybabel extract -F babel.cfg -k _ -k gettext -k ngettext:1,2 -k lazy_gettext -k _l`
# looks for, on top of babel's defaults
KEYWORDS = {**DEFAULT_KEYWORDS, "lazy_gettext": None, "_l": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]")
CJK = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]+")
MENU = [
    "Home",
    "History",
    "Rankings",
    "Badges",
    "Rewards",
    "Appeals",
    "Volunteer certificate",
    "Settings",
]


# --- the catalogue ---------------------------------------------------------------------------


def _catalogue():
    with PO.open("rb") as f:
        return read_po(f)


def _extracted() -> dict[str, list[str]]:
    """Every msgid the code marks for translation (as ``pybabel extract`` finds them), with
    where it is used."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        for msgid in message if isinstance(message, tuple) else (message,):
            if msgid:
                found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def _placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def test_every_message_is_translated_with_its_placeholders():
    catalogue = _catalogue()
    messages = [m for m in catalogue if m.id]
    assert len(messages) > 200
    problems = []
    for m in messages:
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        if m.fuzzy:
            problems.append(f"fuzzy: {m.id!r}")
        if not all(s and s.strip() for s in strings):
            problems.append(f"untranslated: {m.id!r}")
            continue
        for s in strings:
            if _placeholders(s) != _placeholders(ids[0]):
                problems.append(f"placeholders differ: {m.id!r} -> {s!r}")
        if CJK.search(" ".join(strings)):
            problems.append(f"Chinese left in the English text: {m.id!r} -> {strings!r}")
    for m, errors in catalogue.check():  # babel's own checks (python-format and the like)
        problems.extend(f"{m.id!r}: {e}" for e in errors)
    assert not problems, "\n".join(problems)


def test_every_text_the_code_marks_is_in_the_catalogue():
    in_code = _extracted()
    assert "首页" in in_code and "确认兑换" in in_code  # the extractor reads .py and templates
    catalogued = {m.id for m in _catalogue() if m.id}
    missing = {msgid: where for msgid, where in in_code.items() if msgid not in catalogued}
    assert not missing, (
        "texts not in app/translations/en (run pybabel extract and update, then translate):\n"
        + "\n".join(f"{msgid!r} at {', '.join(where)}" for msgid, where in missing.items())
    )


def test_the_catalogue_holds_no_text_the_code_no_longer_uses():
    in_code = _extracted()
    stale = sorted(m.id for m in _catalogue() if m.id and m.id not in in_code)
    assert not stale, f"run pybabel update --no-fuzzy-matching: {stale}"


def test_the_compiled_catalogue_is_the_po():
    assert MO.exists(), "run: .venv/bin/pybabel compile -d app/translations"
    with MO.open("rb") as f:
        compiled = {m.id: m.string for m in read_mo(f) if m.id}
    source = {m.id: m.string for m in _catalogue() if m.id}
    assert compiled == source, "the .mo is stale: run .venv/bin/pybabel compile -d app/translations"


# --- the pages in English --------------------------------------------------------------------


def _chinese_data() -> list[str]:
    """Texts that are Chinese as data, not as the page's words: names of members,
    organisations, rewards, badges, levels and event types, sponsors, ledger and badge
    reasons, what the rider and the organisation wrote."""
    texts: set[str] = set()
    for name in db.session.scalars(select(Member.display_name)):
        texts |= {name, mask_name(name)}
    for column in (
        Organisation.name,
        LedgerEntry.reason,
        BadgeGrant.reason,
        Event.reason,
        Appeal.note,
        Appeal.answer,
        Redemption.name,
    ):
        texts |= set(db.session.scalars(select(column)))
    rules = current_rules()
    for f in rules.files.values():
        texts.add(f.name)
        texts |= {lv.name for lv in f.levels}
        texts |= {t for b in f.badges for t in (b.name, b.description)}
        texts |= {t for r in f.rewards for t in (r.name, r.description, r.sponsor)}
    texts |= {t for et in rules.event_types.values() for t in (et.title, et.description)}
    return sorted((t for t in texts if t), key=len, reverse=True)


def _words_left_in_chinese(page: str, data: list[str]) -> list[str]:
    """The Chinese of the page's HTML that is neither marked lang="zh-CN" nor data."""
    page = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r'<(\w+)\b[^>]*\blang="zh-CN"[^>]*>.*?</\1>', " ", page, flags=re.S)
    text = htmllib.unescape(re.sub(r"<[^>]+>", " ", page))
    for t in data:
        text = text.replace(t, " ")
    return CJK.findall(text)


def _menu(response) -> list[str]:
    nav = re.search(r'<nav class="main"[^>]*>(.*?)</nav>', response.get_data(as_text=True), re.S)
    assert nav, "no menu"
    return [re.sub(r"<[^>]+>", "", a).strip() for a in re.findall(r"<a\b.*?</a>", nav[1], re.S)]


def _h1(response) -> str:
    found = re.search(r"<h1\b[^>]*>(.*?)</h1>", response.get_data(as_text=True), re.S)
    return re.sub(r"<[^>]+>", "", found[1]).strip() if found else ""


@pytest.fixture
def english(app_ctx, web, partner_api) -> dict:
    """r1 with something on every page (points, a badge, a redemption, an appeal, a
    certificate), reading the pages in English; the addresses of the pages that need an id."""
    me = member_id(web.ref)
    for day in range(1, 11):  # ten shifts: the "ten pioneer shifts" badge
        assert partner_api.post_event(shift(f"s{day}", days_ago=day)).status_code == 201
    give(me, 500)
    today = dt.datetime.now(dt.UTC).isoformat()
    EventFactory(
        partner_id=db.session.scalar(select(Partner.id)), member_id=me, type="volunteer.hours",
        org_code="sx.dt.pingcheng", data={"hours": 3, "start": today, "end": today},
    )  # fmt: skip
    EventFactory(member_id=me, status="rejected", reason="照片看不清", type="volunteer.hours")
    db.session.commit()

    assert web.get("/m/lang/en?next=/m/").status_code == 302
    # a redemption, through the confirmation form
    catalogue = web.get("/m/rewards").get_data(as_text=True)
    redeem = re.search(r'href="(/m/rewards/[^"]+/redeem)"', catalogue)
    assert redeem, "nothing to redeem"
    once = re.search(r'name="once" value="([^"]+)"', web.get(redeem[1]).get_data(as_text=True))
    assert once, "no confirmation form"
    done = web.post(redeem[1], {"once": once[1]})
    assert done.status_code == 302 and "/m/redemptions/" in done.headers["Location"]
    # an appeal about a line of the history
    line = db.session.scalar(select(LedgerEntry.id).where(LedgerEntry.member_id == me).limit(1))
    raised = web.post(
        "/m/appeals/new", {"entry": str(line), "kind": "points", "note": "这次值守少算了一小时。"}
    )
    assert raised.status_code == 302, text_of(raised)
    certificate = web.get("/m/certificate").get_data(as_text=True)
    code = re.search(r'<span class="code">([A-Z0-9]+)</span>', certificate)
    assert code, "no certificate"
    return {
        "redeem": redeem[1],
        "redemption": done.headers["Location"].replace("http://localhost", ""),
        "appeal": raised.headers["Location"].replace("http://localhost", ""),
        "verify": f"/verify/{code[1]}",
    }


# (address or the name of one in the ``english`` fixture, its heading, other words it shows)
PAGES = [
    ("/m/", "My points", ["Points available", "My rankings", "Recent activity", "Badges"]),
    ("/m/history", "Points history", ["All records", "Question? Appeal", "Not approved"]),
    ("/m/boards", "Leaderboards", ["This week", "All points", "Period"]),
    ("/m/badges", "My badges", ["Earned (1)", "Not yet earned"]),
    ("/m/rewards", "Rewards", ["Points available", "My redemptions", "Stock"]),
    ("redeem", "Confirm redemption", ["Points needed", "Pick-up place"]),
    ("/m/redemptions", "My redemptions", ["Reward", "Status", "Ready to collect"]),
    ("redemption", None, ["Redemption code", "Details", "Collect by"]),
    ("/m/appeals", "My appeals", ["Raise an appeal", "Sent, waiting to be handled"]),
    ("/m/appeals/new", "Raise an appeal", ["Type of problem", "Send appeal"]),
    ("appeal", "Appeal: Points are wrong", ["The organisation's answer", "No answer yet."]),
    ("/m/certificate", "Volunteer hours certificate", ["Confirmed volunteer hours", "3 h"]),
    ("/m/settings", "Settings", ["Language", "Don't show my name on public leaderboards"]),
    ("verify", "Check a volunteer hours certificate", ["✓ Certificate is valid"]),
]


@pytest.mark.parametrize(("address", "heading", "words"), PAGES, ids=[p[0] for p in PAGES])
def test_every_page_reads_in_english(english, web, address, heading, words):
    response = web.get(english.get(address, address))
    assert response.status_code == 200, text_of(response)
    html = response.get_data(as_text=True)
    assert re.search(r'<html lang="en"', html)
    assert re.search(r"<title>[^<]* · Pioneer Points</title>", html)
    if address != "verify":  # the public check has no member and no menu
        assert _menu(response) == MENU
    if heading:
        assert _h1(response) == heading
    text = text_of(response)
    for word in words:
        assert word in text, word
    assert "%(" not in text and "{{" not in text and "{%" not in text  # no broken placeholder
    assert _words_left_in_chinese(html, _chinese_data()) == []


def test_a_rider_hidden_from_the_boards_is_anonymous_in_english(web, partner_api):
    partner_api.put_member("r2", name="李大明")
    just_now = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    assert (
        partner_api.post_event(hazard("h1", member="r2", occurred_at=just_now)).status_code == 201
    )
    db.session.get(Member, member_id("r2")).hidden = True
    db.session.commit()
    assert "匿名" in text_of(web.get("/m/boards"))
    web.get("/m/lang/en?next=/m/boards")
    page = text_of(web.get("/m/boards"))
    assert "1 Anonymous 10" in page and "匿名" not in page


def test_the_chinese_pages_stay_chinese(web):
    response = web.get("/m/")
    assert 'lang="zh-CN"' in response.get_data(as_text=True)
    assert _menu(response) == ["首页", "明细", "排行", "徽章", "兑换", "诉求", "志愿证明", "设置"]
    assert "可用积分" in text_of(response)


def test_an_untranslated_text_would_be_found(english, web):
    """The check of the pages finds Chinese that is neither data nor marked as Chinese."""
    page = web.get("/m/").get_data(as_text=True)
    assert _words_left_in_chinese(page, _chinese_data()) == []
    untranslated = page.replace(">Recent activity<", ">最近记录<")
    assert _words_left_in_chinese(untranslated, _chinese_data()) == ["最近记录"]
    marked = page.replace(">Recent activity<", ' lang="zh-CN">最近记录<')
    assert _words_left_in_chinese(marked, _chinese_data()) == []


# --- numbers and dates -----------------------------------------------------------------------


def test_numbers_and_dates_follow_the_language(web):
    me = member_id(web.ref)
    at = dt.datetime(2025, 11, 29, 4, 0, tzinfo=dt.UTC)  # noon in Shanxi
    give(me, 12345, created_at=at)

    web.get("/m/lang/en?next=/m/history")
    english = text_of(web.get("/m/history"))
    assert "Nov 29, 2025" in english and "2025年" not in english
    assert "Points available 12,345" in text_of(web.get("/m/"))

    web.get("/m/lang/zh?next=/m/history")
    chinese = text_of(web.get("/m/history"))
    assert "2025年11月29日" in chinese and "Nov 29" not in chinese
    assert "可用积分 12,345" in text_of(web.get("/m/"))
