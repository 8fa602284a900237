"""Request signing: HMAC-SHA256 over the timestamp and the body, per API key, with a replay
window; two keys at once for rotation; revocation."""

from __future__ import annotations

import json
import time

import pytest

from app.api.signing import SIGNATURE, TIMESTAMP, sign
from app.extensions import db
from app.models import Partner
from app.services.partners import add_key, key_id_of, revoke_key, signing_secret

from ..partner_api import shift


def _require_signing(code: str = "meituan") -> Partner:
    partner = db.session.query(Partner).filter_by(code=code).one()
    partner.signing_required = True
    db.session.commit()
    return partner


def _signed(api, body: dict, *, key: str | None = None, at: float | None = None,
            secret: str | None = None) -> dict:  # fmt: skip
    """Headers of a signed request carrying ``body``, as a partner computes them."""
    key = key or api.key
    stamp = int(at if at is not None else time.time())
    raw = json.dumps(body).encode()
    secret = secret or signing_secret(key_id_of(key))
    return {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        TIMESTAMP: str(stamp),
        SIGNATURE: sign(secret, stamp, raw),
    }, raw


def _post(api, body, **kwargs):
    headers, raw = _signed(api, body, **kwargs)
    return api.client.post("/api/v1/events", data=raw, headers=headers)


def test_a_partner_that_must_sign_is_refused_without_a_signature(partner_api, rider):
    _require_signing()
    response = partner_api.post_event(shift("e1"))
    assert response.status_code == 401
    assert response.json["error"]["code"] == "missing_signature"
    assert _post(partner_api, shift("e1")).status_code == 201


def test_a_signed_event_is_accepted_and_a_wrong_one_refused(partner_api, rider):
    _require_signing()
    headers, raw = _signed(partner_api, shift("e1"))
    tampered = raw.replace(b'"hours": 3', b'"hours": 9')
    assert tampered != raw
    response = partner_api.client.post("/api/v1/events", data=tampered, headers=headers)
    assert response.status_code == 401 and response.json["error"]["code"] == "bad_signature"
    wrong_secret = _post(partner_api, shift("e1"), secret="pps_x_not-the-secret")
    assert wrong_secret.json["error"]["code"] == "bad_signature"
    garbage = dict(headers, **{TIMESTAMP: "yesterday"})
    bad_stamp = partner_api.client.post("/api/v1/events", data=raw, headers=garbage)
    assert bad_stamp.status_code == 401 and bad_stamp.json["error"]["code"] == "bad_signature"
    assert partner_api.client.post("/api/v1/events", data=raw, headers=headers).status_code == 201


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_a_timestamp_outside_five_minutes_is_refused(partner_api, rider, offset):
    _require_signing()
    response = _post(partner_api, shift("e1"), at=time.time() + offset)
    assert response.status_code == 401
    assert response.json["error"]["code"] == "stale_signature"
    assert response.json["error"]["details"]["window_seconds"] == 300


def test_a_timestamp_inside_the_window_is_accepted(partner_api, rider):
    _require_signing()
    assert _post(partner_api, shift("e1"), at=time.time() - 290).status_code == 201


def test_the_same_signed_request_cannot_be_replayed(partner_api, rider):
    _require_signing()
    headers, raw = _signed(partner_api, shift("e1"))
    first = partner_api.client.post("/api/v1/events", data=raw, headers=headers)
    assert first.status_code == 201
    again = partner_api.client.post("/api/v1/events", data=raw, headers=headers)
    assert again.status_code == 401 and again.json["error"]["code"] == "replayed_signature"
    # a retry signed afresh (a later timestamp) is the event's idempotent replay: 200, the
    # first answer, nothing awarded twice
    retry = _post(partner_api, shift("e1"), at=time.time() + 1)
    assert retry.status_code == 200 and retry.json == first.json


def test_two_keys_sign_at_once_and_a_revoked_key_stops(partner_api, rider):
    partner = _require_signing()
    new_key = add_key(partner)
    db.session.commit()
    assert _post(partner_api, shift("e1")).status_code == 201  # the old key and its secret
    assert _post(partner_api, shift("e2"), key=new_key).status_code == 201  # the new one
    # each key signs with its own secret: the old secret does not sign for the new key
    crossed = _post(partner_api, shift("e3"), key=new_key,
                    secret=signing_secret(key_id_of(partner_api.key)))  # fmt: skip
    assert crossed.json["error"]["code"] == "bad_signature"
    revoke_key(key_id_of(partner_api.key))
    db.session.commit()
    revoked = _post(partner_api, shift("e4"))
    assert revoked.status_code == 401 and revoked.json["error"]["code"] == "invalid_key"
    assert _post(partner_api, shift("e4"), key=new_key).status_code == 201


def test_a_partner_not_required_to_sign_has_a_sent_signature_checked(partner_api, rider):
    assert partner_api.post_event(shift("e1")).status_code == 201  # unsigned: fine
    headers, raw = _signed(partner_api, shift("e2"))
    headers[SIGNATURE] = "v1=" + "0" * 64
    response = partner_api.client.post("/api/v1/events", data=raw, headers=headers)
    assert response.status_code == 401 and response.json["error"]["code"] == "bad_signature"
    assert _post(partner_api, shift("e2")).status_code == 201


def test_a_signed_get_signs_the_empty_body(partner_api, rider):
    _require_signing()
    stamp = int(time.time())
    headers = {
        **partner_api.headers,
        TIMESTAMP: str(stamp),
        SIGNATURE: sign(signing_secret(key_id_of(partner_api.key)), stamp, b""),
    }
    assert partner_api.client.get("/api/v1/members/r1", headers=headers).status_code == 200
    assert partner_api.get_member("r1").status_code == 401


def test_signing_secrets_differ_per_key_and_follow_the_signing_key(app_ctx):
    one, two = signing_secret("aaaaaaaa"), signing_secret("bbbbbbbb")
    assert one != two and one.startswith("pps_aaaaaaaa_") and len(one) > 50
    app_ctx.config["PARTNER_SIGNING_KEY"] = "rotated"
    try:
        assert signing_secret("aaaaaaaa") != one
    finally:
        app_ctx.config["PARTNER_SIGNING_KEY"] = None


def test_the_cli_rotates_requires_and_revokes(runner, partner_api, rider):
    result = runner.invoke(args=["partners", "signing", "meituan", "--required"])
    assert result.exit_code == 0, result.output
    assert db.session.query(Partner).filter_by(code="meituan").one().signing_required
    result = runner.invoke(args=["partners", "add-key", "meituan"])
    assert result.exit_code == 0, result.output
    new_key = result.output.strip().splitlines()[-1]
    secret = runner.invoke(args=["partners", "signing-secret", key_id_of(new_key)])
    assert secret.exit_code == 0 and secret.output.strip() == signing_secret(key_id_of(new_key))
    assert _post(partner_api, shift("e1"), key=new_key).status_code == 201
    result = runner.invoke(args=["partners", "revoke-key", key_id_of(partner_api.key)])
    assert result.exit_code == 0 and "revoked" in result.output
    assert _post(partner_api, shift("e2")).json["error"]["code"] == "invalid_key"
    gone = runner.invoke(args=["partners", "signing-secret", key_id_of(partner_api.key)])
    assert gone.exit_code != 0 and "no active API key" in gone.output
    missing = runner.invoke(args=["partners", "add-key", "nobody"])
    assert missing.exit_code != 0 and "no partner" in missing.output
