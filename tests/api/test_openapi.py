"""The OpenAPI document and the docs page; errors outside any view are JSON too."""

from openapi_spec_validator import validate


def test_openapi_document_is_valid_and_complete(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    spec = response.json
    validate(spec)
    operations = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert {
        ("PUT", "/api/v1/members/{ref}"),
        ("GET", "/api/v1/members/{ref}"),
        ("GET", "/api/v1/members/{ref}/ledger"),
        ("POST", "/api/v1/events"),
        ("POST", "/api/v1/events/batch"),
        ("GET", "/api/v1/rewards"),
        ("POST", "/api/v1/members/{ref}/redemptions"),
        ("GET", "/api/v1/members/{ref}/redemptions"),
        ("GET", "/api/v1/redemptions/{code}"),
        ("GET", "/api/v1/redemptions/{code}/qr.png"),
        ("POST", "/api/v1/redemptions/{code}/confirm"),
        ("POST", "/api/v1/redemptions/{code}/cancel"),
    } <= operations
    redeem = spec["paths"]["/api/v1/members/{ref}/redemptions"]["post"]
    assert {"201", "404", "409", "422"} <= set(redeem["responses"])
    member = spec["components"]["schemas"]["MemberOut"]["properties"]
    assert {"level_info", "badges", "expiring"} <= set(member)
    post = spec["paths"]["/api/v1/events"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("EventIn")
    assert {"201", "200", "401", "409", "422"} <= set(post["responses"])
    assert spec["components"]["securitySchemes"]["partnerKey"]["scheme"] == "bearer"


def test_docs_page_is_served_without_any_cdn(client):
    response = client.get("/api/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "/api/v1/events/batch" in html and "EventIn" in html
    assert "http://" not in html and "https://" not in html and "<script" not in html


def test_unknown_api_routes_and_methods_answer_json(client):
    missing = client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong = client.delete("/api/v1/events")
    assert wrong.status_code == 405 and wrong.json["error"]["code"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]


def test_the_documented_error_shape_is_the_one_returned(client):
    spec = client.get("/api/openapi.json").json
    assert set(spec["components"]["schemas"]["ErrorOut"]["properties"]) == {"error"}
    for name in ("DEFAULT_ERROR", "UNPROCESSABLE_ENTITY"):  # flask-smorest's own responses
        schema = spec["components"]["responses"][name]["content"]["application/json"]["schema"]
        assert schema["$ref"].endswith("/ErrorOut")
