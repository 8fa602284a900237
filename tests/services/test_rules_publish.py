"""Publishing a rules version: checked first, in force at once here and in every other
process at its next poll, kept with all its files so it can be loaded again, and rolled back
by publishing the earlier version again."""

import pytest
from sqlalchemy import select

from app import create_app
from app.errors import Invalid
from app.extensions import db
from app.models import LedgerEntry, RuleVersion
from app.services.rules import current_rules, load_version, publish, registry

from ..conftest import ROOT
from ..partner_api import shift
from ..rules_support import changed_rules


@pytest.fixture
def candidate(app_ctx, tmp_path):
    """The shipped rules with the province's shift points doubled (its examples dropped)."""
    yield changed_rules(tmp_path / "candidate")
    registry().reload()  # the next test starts from RULES_DIR again


def test_a_published_version_scores_new_events_at_once(partner_api, rider, candidate):
    before = current_rules().version
    ruleset = publish(str(candidate), "tester", "double shifts")
    db.session.commit()
    assert ruleset.version != before and current_rules().version == ruleset.version
    stored = db.session.get(RuleVersion, ruleset.version)
    assert stored.published_by == "tester" and "sx.yaml" in stored.files
    response = partner_api.post_event(shift("s1"))
    assert response.json["points"] == 30 and response.json["rules_version"] == ruleset.version
    entry = db.session.scalar(select(LedgerEntry))
    assert entry.rules_version == ruleset.version
    assert load_version(ruleset.version).version == ruleset.version


def test_another_process_switches_at_its_next_poll_and_back_on_a_rollback(app, candidate):
    original = current_rules().version
    ruleset = publish(str(candidate), "tester")
    db.session.commit()
    other = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": None,
                        "RULES_DIR": app.config["RULES_DIR"], "RULES_POLL_SECONDS": 0})  # fmt: skip
    with other.app_context():
        assert current_rules().version == ruleset.version  # its first use finds it
        db.session.remove()
    publish(str(ROOT / "rules"), "tester", "roll back")
    db.session.commit()
    assert current_rules().version == original
    with other.app_context():
        other.test_client().get("/api/v1/nothing")  # a request polls first
        assert current_rules().version == original
        db.session.remove()
    assert db.session.scalar(select(RuleVersion.note).where(RuleVersion.version == original)) == (
        "roll back"
    )


def test_rules_with_errors_are_not_published(app_ctx, candidate):
    (candidate / "sx.yaml").write_text("org: sx\nrules: [", encoding="utf-8")
    before = current_rules().version
    with pytest.raises(Invalid) as refused:
        publish(str(candidate), "tester")
    assert any("sx.yaml:" in e for e in refused.value.details["errors"])
    db.session.rollback()
    assert db.session.scalar(select(RuleVersion)) is None
    assert current_rules().version == before


def test_the_command_publishes_and_reports(app_ctx, candidate, runner):
    result = runner.invoke(args=["rules", "publish", str(candidate), "--note", "double"])
    assert result.exit_code == 0, result.output
    assert "published" in result.output
    assert db.session.scalar(select(RuleVersion.note)) == "double"
    (candidate / "sx.yaml").write_text("org: sx\nrules: [", encoding="utf-8")
    refused = runner.invoke(args=["rules", "publish", str(candidate)])
    assert refused.exit_code != 0 and "sx.yaml:" in refused.output
