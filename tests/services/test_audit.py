import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.models import LedgerEntry, Member
from app.services.audit import verify_ledger

from ..partner_api import hazard


@pytest.fixture
def history(partner_api, rider):
    for i in range(3):
        assert (
            partner_api.post_event(hazard(f"h{i}", severity="low", days_ago=1 + i)).status_code
            == 201
        )
    partner_api.put_member("r2")
    partner_api.post_event(hazard("other", member="r2"))
    db.session.remove()


def test_an_untouched_ledger_verifies(app_ctx, history):
    report = verify_ledger()
    assert report.ok and report.members == 2 and report.entries == 4


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("UPDATE ledger_entries SET points = 300 WHERE seq = 2 AND member_id = {m}",
         "content does not match its hash"),
        ("UPDATE ledger_entries SET reason = 'x' WHERE seq = 1 AND member_id = {m}",
         "content does not match its hash"),
        ("DELETE FROM ledger_entries WHERE seq = 3 AND member_id = {m}",
         "the member's newest entry is missing"),
        ("DELETE FROM ledger_entries WHERE seq = 2 AND member_id = {m}",
         "sequence jumps from 1 to 3"),
        ("UPDATE members SET balance = balance + 50 WHERE id = {m}", "balance 59 != sum of entries 9"),
    ],
)  # fmt: skip
def test_tampering_is_found_and_the_entry_named(app_ctx, history, tamper, problem):
    member_id = db.session.scalar(select(Member.id).order_by(Member.id))
    db.session.commit()  # end the read: on SQLite an open transaction holds the lock
    with db.engine.begin() as conn:
        conn.execute(text(tamper.format(m=member_id)))
    report = verify_ledger()
    assert not report.ok
    (found,) = report.problems
    assert found["member"] == member_id and problem in found["problem"]
    if "sequence" in problem or "hash" in problem:
        entry = db.session.get(LedgerEntry, found["entry"])
        assert entry is not None and entry.member_id == member_id
