from __future__ import annotations

import yaml
from openapi_spec_validator import validate
from rest_framework.test import APIClient


def test_the_schema_documents_tokens_errors_and_examples(api: APIClient, db: None) -> None:
    schema = api.get("/api/schema/?format=json").json()
    assert schema["components"]["securitySchemes"]["tokenAuth"]["scheme"] == "bearer"
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"error"}
    claims = schema["paths"]["/api/v1/claims/"]
    assert claims["post"]["responses"]["4XX"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    examples = claims["post"]["requestBody"]["content"]["application/json"]["examples"]
    assert {"AFeatureClaim", "ACircuitClaim"} <= set(examples)
    update = schema["paths"]["/api/v1/claims/{id}/"]["patch"]
    assert any(p["name"] == "If-Match" and p["required"] for p in update["parameters"])
    for path in ["/api/v1/claims/{id}/reviews/", "/api/v1/render-jobs/", "/api/v1/import/"]:
        assert schema["paths"][path]["post"]["requestBody"]["content"]["application/json"].get(
            "examples"
        ), path
    parameters = {p["name"] for p in schema["paths"]["/api/v1/claims/"]["get"]["parameters"]}
    assert {"model", "layer", "neuron", "status", "author", "ordering", "cursor"} <= parameters


def test_the_schema_is_valid_openapi(api: APIClient, db: None) -> None:
    # A default that its own pattern refuses (origin_username's "") made it invalid.
    validate(yaml.safe_load(api.get("/api/schema/").content))
