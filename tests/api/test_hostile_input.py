"""Hostile input everywhere text goes in: SQL and template injection strings, markup, path
tricks, control and odd Unicode characters. Nothing is executed, nothing answers 5xx, what is
stored comes back as it was sent, pages escape it, and the tables are all still there."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Appeal, Event, Member

from ..console.test_console import sign_in
from ..factories import ConsoleUserFactory
from ..partner_api import hazard, shift
from ..web.conftest import sign_in as rider_sign_in

HOSTILE = [
    "'; DROP TABLE members; --",
    '" OR 1=1 --',
    "1; SELECT pg_sleep(10)",
    "{{ 7*7 }}{{ config.SECRET_KEY }}",
    "{% for x in range(9) %}x{% endfor %}",
    "${7*7}#{7*7}<%= 7*7 %>",
    "<script>alert(1)</script><img src=x onerror=alert(1)>",
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "%00%2e%2e%2f",
    "\u202eevil\u200b\ufeff",
    "😀" * 20,
    "a\tb\rc\nd",
]


def _tables_intact() -> None:
    """Every table still answers."""
    for model in (Member, Event, Appeal):
        db.session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("text", HOSTILE)
def test_member_text_is_stored_verbatim_and_never_run(partner_api, text):
    response = partner_api.put_member("m1", name=text[:100], tags=[text[:64]])
    assert response.status_code in (201, 422), response.json
    if response.status_code == 201:
        member = db.session.scalar(select(Member))
        assert member.display_name == text[:100].strip() or member.display_name == text[:100]
    for ref in (text[:128], "m1"):
        got = partner_api.get_member(ref)
        assert got.status_code in (200, 404), got.json
    _tables_intact()
    assert "49" not in str(partner_api.get_member("m1").json)


@pytest.mark.parametrize("text", HOSTILE)
def test_event_text_in_every_field_gets_4xx_or_is_stored_as_sent(partner_api, rider, text):
    for field in ("type", "member", "org", "occurred_at"):
        body = hazard("e-" + field) | {field: text}
        response = partner_api.post_event(body)
        assert response.status_code < 500, (field, response.json)
        if response.status_code >= 400:
            assert set(response.json["error"]) == {"code", "message", "details"}
    data = partner_api.post_event(hazard("e-data") | {"data": {"severity": text}})
    assert data.status_code == 422  # not one of the allowed values
    ok = partner_api.post_event(hazard(text[:128]) if text.strip() else hazard("blank"))
    assert ok.status_code in (201, 422)
    if ok.status_code == 201:
        assert ok.json["event"] == text[:128]
        assert partner_api.post_event(hazard(text[:128])).status_code == 200  # its replay
    _tables_intact()


@pytest.mark.parametrize("text", HOSTILE)
def test_board_scopes_and_queries_refuse_hostile_text(partner_api, rider, text):
    for path in (f"/api/v1/leaderboards/{text}", f"/api/v1/members/{text}/ranks"):
        response = partner_api.client.get(path, headers=partner_api.headers)
        assert response.status_code < 500
        assert response.is_json or response.status_code in (301, 308)  # a path normalised
    response = partner_api.client.get("/api/v1/leaderboards/sx",
                                      query_string={"period": text, "category": text},
                                      headers=partner_api.headers)  # fmt: skip
    assert response.status_code in (400, 404, 422)


def test_rider_and_console_pages_escape_what_was_stored(app_ctx, partner_api, rider):
    script = "<script>alert(1)</script>"
    assert partner_api.put_member("r1", name=f"张{script}").status_code == 200
    assert partner_api.post_event(shift("s1")).status_code == 201
    web = rider_sign_in(app_ctx, partner_api, "r1")
    note = f"{{{{ 7*7 }}}} {script} '; DROP TABLE appeals; --"
    raised = web.post("/m/appeals/new", {"kind": "missing", "note": note})
    assert raised.status_code == 302
    page = web.get(raised.headers["Location"]).get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "{{ 7*7 }}" in page.replace("&#39;", "'") and ">49<" not in page
    assert db.session.scalar(select(Appeal.note)) == note  # stored exactly as typed
    ConsoleUserFactory(username="boss", org_code="sx", role="admin")
    db.session.commit()
    staff = sign_in(app_ctx, "boss")
    for q in HOSTILE:
        found = staff.client.get("/console/members", query_string={"q": q})
        assert found.status_code in (200, 400), q
        assert "<script>alert" not in found.get_data(as_text=True)
    appeals = staff.client.get("/console/appeals").get_data(as_text=True)
    assert "<script>alert" not in appeals
    _tables_intact()


@pytest.mark.parametrize(
    "filename",
    [
        "../../../../tmp/pp-owned.yaml",
        "..\\..\\sx.yaml",
        "/etc/passwd",
        "sx.yaml",
        "",
        "a\x00b.yaml",
    ],
)
def test_a_rules_upload_cannot_choose_where_it_goes(app_ctx, orgs, filename, tmp_path):
    from ..rules_support import province_file

    ConsoleUserFactory(username="xd", org_code="sx.ty.xiaodian", role="admin")
    db.session.commit()
    staff = sign_in(app_ctx, "xd")
    text = province_file()  # another organisation's rules (the province's) in the upload
    response = staff.client.post("/console/rules/check", data={
        "csrf": staff.csrf(), "text": "", "file": (io.BytesIO(text.encode()), filename)},
        content_type="multipart/form-data")  # fmt: skip
    assert response.status_code < 500
    body = response.get_data(as_text=True)
    # whatever the name, the upload is checked as the user's own file, nowhere else
    assert "sx.ty.xiaodian.yaml" in body or response.status_code == 400
    from pathlib import Path

    assert not Path("/tmp/pp-owned.yaml").exists()
    from app.services.rules import files_in_force

    assert "pp-owned.yaml" not in files_in_force() and "passwd" not in files_in_force()


def test_a_batch_over_the_limit_and_deep_or_huge_documents_are_refused(partner_api, rider):
    over = partner_api.post_batch([hazard(f"b{i}") for i in range(1001)])
    assert over.status_code in (413, 422)
    nested = '{"x":' * 5000 + "{}" + "}" * 5000
    deep = ('{"id": "deep", "type": "governance.hazard_report", "member": "r1", "data": '
            + nested + "}")  # fmt: skip
    response = partner_api.client.post("/api/v1/events", data=deep,
                                       content_type="application/json",
                                       headers=partner_api.headers)  # fmt: skip
    assert response.status_code in (400, 422), response.status_code
    assert db.session.scalar(select(func.count(Event.id))) == 0
