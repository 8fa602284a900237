"""The volunteer-hours certificate: a printable page of a year's verified volunteer hours for the
member, and the public check of its code (``public``, outside /m: anyone may check a code and
sees only the masked name, the hours and the year)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for

from ...engine.periods import zone
from ...extensions import db
from ...models.base import utcnow
from ...services import certificates
from ...services.rules import current_rules
from .. import bp
from ..auth import current_member, member_required

public = Blueprint("public", __name__)


@bp.route("/certificate")
@member_required
def certificate():
    me = current_member()
    tz_name = current_app.config["APP_TIMEZONE"]
    this_year = utcnow().astimezone(zone(tz_name)).year
    by_year = certificates.hours_by_year(current_rules(), me, tz_name)
    years = sorted(set(by_year) | {this_year}, reverse=True)
    year = request.args.get("year", type=int)
    if year not in years:
        year = this_year
    hours = by_year.get(year) or certificates.YearHours(year)
    cert = certificates.issue(me, year, hours.hours)
    db.session.commit()
    verify_url = url_for("public.verify", code=cert.code, _external=True) if cert else None
    return render_template("web/certificate.html", years=years, year=year, hours=hours,
                           cert=cert, verify_url=verify_url)  # fmt: skip


@public.route("/verify/<code>")
def verify(code: str):
    found = certificates.check(code)
    return render_template("web/verify.html", found=found, code=code), 200 if found else 404
