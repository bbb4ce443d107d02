"""The OpenAPI document: valid 3.1, complete, and generated from the routes' own declarations."""

from __future__ import annotations

import jsonschema
import pytest
import yaml
from flask import Blueprint
from marshmallow import Schema, fields
from openapi_spec_validator import validate

from api import endpoint as endpoint_mod
from api.auth import KEY, KEY_OR_USER, NONE, USER
from api.endpoint import MUTATING, endpoint
from api.openapi import E164_PATTERN, KEY_SCHEME, USER_SCHEME, error_statuses
from api.pagination import ListQuery
from api.schemas.fields import Amount, Currency, Phone, Timestamp
from core.amounts import MAX_AMOUNT

METHODS = ("get", "put", "post", "patch", "delete")


@pytest.fixture
def doc(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.get_json()


def _operations(doc):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def deref(doc, node):
    """Follow a local `$ref` chain."""
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def _spec_of(app, espec):
    """The (path, method) under which `app` serves a registry entry."""
    from api.openapi import _path_and_params

    for rule in app.url_map.iter_rules():
        if getattr(app.view_functions.get(rule.endpoint), "endpoint_spec", None) is espec:
            return _path_and_params(rule.rule)[0], espec.method.lower()
    return None


def test_document_is_valid_openapi_31_and_raw(client, doc):
    assert doc["openapi"] == "3.1.0"
    assert "success" not in doc, "the document is served raw, without the envelope"
    validate(doc)
    r = client.get("/openapi.yaml")
    assert r.status_code == 200 and "yaml" in r.mimetype
    assert yaml.safe_load(r.get_data(as_text=True)) == doc
    assert r.headers.get("X-Trace-Id")


def test_patterns_are_ecma_regexes_anchored_with_caret_and_dollar(doc):
    """The code anchors with \\A and \\Z (Python's "$" lets a final newline through);
    the document speaks JSON Schema's ECMA-262, where those are not anchors."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.append(node["pattern"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert "^[0-9]{4,6}$" in found and "^[0-9]{6}$" in found
    assert not [p for p in found if "\\A" in p or "\\Z" in p or not (p.startswith("^") and p.endswith("$"))]


def test_every_registered_route_is_documented(app, doc):
    assert endpoint_mod.REGISTRY, "no routes declared?"
    for espec in endpoint_mod.REGISTRY:
        where = _spec_of(app, espec)
        assert where, f"{espec.method} {espec.rule} ({espec.handler_name}) is declared but not served"
        path, method = where
        assert method in doc["paths"].get(path, {}), f"{method.upper()} {path} missing from the document"
    n_ops = sum(1 for _ in _operations(doc))
    assert n_ops == len(endpoint_mod.REGISTRY)


def test_every_operation_follows_the_conventions(app, doc):
    schemes = doc["components"]["securitySchemes"]
    assert schemes[KEY_SCHEME]["scheme"] == "bearer" and schemes[USER_SCHEME]["scheme"] == "bearer"
    assert "sxm_test_" in schemes[KEY_SCHEME]["description"]
    assert "verify-otp" in schemes[USER_SCHEME]["description"]
    by_loc = {}
    for espec in endpoint_mod.REGISTRY:
        by_loc[_spec_of(app, espec)] = espec
    op_ids = set()
    for path, method, op in _operations(doc):
        espec = by_loc[(path, method)]
        assert op["operationId"] not in op_ids
        op_ids.add(op["operationId"])
        params = [deref(doc, p) for p in op.get("parameters", [])]
        headers = {p["name"]: p for p in params if p["in"] == "header"}
        if method.upper() in MUTATING:
            idem = headers["X-Idempotency-Key"]
            assert idem["required"] is True
            assert idem["schema"] == {"type": "string", "minLength": 1, "maxLength": 255}
        else:
            assert "X-Idempotency-Key" not in headers
        for name in [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]:
            assert any(p["in"] == "path" and p["name"] == name and p["required"] for p in params)
        statuses = {int(s) for s in op["responses"]}
        assert espec.status in statuses and 500 in statuses
        assert set(espec.errors) <= statuses
        if espec.auth != NONE:
            assert 401 in statuses
        if espec.scope:
            assert 403 in statuses
            assert op["security"][0] == {KEY_SCHEME: [espec.scope]}
        if method.upper() in MUTATING:
            assert {400, 409, 415, 422} <= statuses
        for status, resp in op["responses"].items():
            resp = deref(doc, resp)
            schema = resp["content"]["application/json"]["schema"]
            if int(status) < 400:
                assert schema["properties"]["success"] == {"const": True}
                assert schema["required"] == ["success", "data"]
            else:
                assert schema == {"$ref": "#/components/schemas/Error"}
        if espec.body is not None:
            body_schema = op["requestBody"]["content"]["application/json"]["schema"]
            assert deref(doc, body_schema)["additionalProperties"] is False


def test_responses_of_real_requests_match_the_document(api, doc):
    """The document describes what the routes really give (success and errors)."""

    def check(path, method, status, body):
        op = doc["paths"][path][method]
        resp = deref(doc, op["responses"][str(status)])
        schema = dict(resp["content"]["application/json"]["schema"])
        schema["components"] = doc["components"]
        jsonschema.Draft202012Validator(schema).validate(body)

    r = api.get("/v1/merchant")
    check("/v1/merchant", "get", 200, r.get_json())
    r = api.post("/v1/merchant/api-keys", {"name": "till", "scopes": ["payments:read"]})
    check("/v1/merchant/api-keys", "post", 201, r.get_json())
    key_id = r.get_json()["data"]["id"]
    r = api.get("/v1/merchant/api-keys", limit=1)
    check("/v1/merchant/api-keys", "get", 200, r.get_json())
    assert r.get_json()["data"]["next_cursor"]
    r = api.post(f"/v1/merchant/api-keys/{key_id}/revoke")
    check("/v1/merchant/api-keys/{key_id}/revoke", "post", 200, r.get_json())
    r = api.post("/v1/merchant/api-keys/key_nope/revoke")
    check("/v1/merchant/api-keys/{key_id}/revoke", "post", 404, r.get_json())
    r = api.post("/v1/merchant/api-keys", {"scopes": ["root"]})
    check("/v1/merchant/api-keys", "post", 422, r.get_json())


# --- a route added later appears on its own ----------------------------------------------


class ProbeIn(Schema):
    amount = Amount(required=True)
    currency = Currency()
    to_phone_number = Phone(required=True)
    note = fields.String(allow_none=True)
    when = Timestamp()


class ProbeOut(Schema):
    id = fields.String(required=True)
    object = fields.Constant("probe")
    amount = Amount(required=True)
    currency = Currency()
    note = fields.String(allow_none=True)
    created_at = Timestamp(required=True)
    expires_at = Timestamp(allow_none=True)


@pytest.fixture
def probe_doc(runtime, monkeypatch):
    """The document of an app with two routes declared the way a later issue would."""
    from api.app import create_app

    monkeypatch.setattr(endpoint_mod, "REGISTRY", list(endpoint_mod.REGISTRY))
    bp = Blueprint("openapi_probe", __name__, url_prefix="/v1")

    @endpoint(bp, "POST", "/probes/<probe_id>/things", auth=KEY_OR_USER, scope="transfers:create",
              body=ProbeIn, response=ProbeOut, status=201, tags=["Probes"], errors=[429],
              step_up=True)
    def make_probe_thing(ctx, body):
        """Make a thing."""

    @endpoint(bp, "GET", "/probes", auth=USER, query=ListQuery, response=ProbeOut, many=True,
              tags=["Probes"])
    def list_probes(ctx):
        """List probes."""

    @endpoint(bp, "GET", "/probes/public", auth=NONE, response=ProbeOut, tags=["Probes"])
    def public_probe(ctx):
        """Anyone."""

    app = create_app(runtime=runtime)
    app.register_blueprint(bp)
    return app.test_client().get("/openapi.json").get_json()


def test_a_new_route_appears_with_its_schemas(probe_doc):
    doc = probe_doc
    validate(doc)
    assert "/v1/merchant" in doc["paths"], "existing routes stay"
    op = doc["paths"]["/v1/probes/{probe_id}/things"]["post"]
    assert op["security"] == [{KEY_SCHEME: ["transfers:create"]}, {USER_SCHEME: []}]
    assert {int(s) for s in op["responses"]} == {201, 400, 401, 403, 404, 409, 415, 422, 429, 500}
    names = [deref(doc, p)["name"] for p in op["parameters"]]
    assert names == ["probe_id", "X-Idempotency-Key", "X-Step-Up-Token"]
    assert op["requestBody"]["required"] is True

    schemas = doc["components"]["schemas"]
    probe_in = schemas["ProbeIn"]
    assert probe_in["additionalProperties"] is False
    assert sorted(probe_in["required"]) == ["amount", "currency", "to_phone_number"]
    props = probe_in["properties"]
    assert props["amount"] == {"type": "integer", "minimum": 1, "maximum": MAX_AMOUNT,
                               "description": "integer minor units (1250 = 12.50)"}
    assert props["currency"]["type"] == "string" and props["currency"]["enum"] == ["USD", "LRD"]
    assert props["to_phone_number"]["type"] == "string"
    assert props["to_phone_number"]["pattern"] == E164_PATTERN
    assert props["note"]["type"] == ["string", "null"]
    assert props["when"] == {"type": "string", "format": "date-time"}

    out = schemas["ProbeOut"]
    assert "additionalProperties" not in out, "responses stay open to new fields"
    assert sorted(out["required"]) == sorted(out["properties"]), "every response field is always present"
    assert out["properties"]["object"]["const"] == "probe"
    assert out["properties"]["expires_at"]["type"] == ["string", "null"]

    page = doc["paths"]["/v1/probes"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    data = page["properties"]["data"]
    assert data["required"] == ["items", "has_more", "next_cursor"]
    assert data["properties"]["items"] == {"type": "array", "items": {"$ref": "#/components/schemas/ProbeOut"}}
    assert data["properties"]["next_cursor"]["type"] == ["string", "null"]
    listing = doc["paths"]["/v1/probes"]["get"]
    assert listing["security"] == [{USER_SCHEME: []}]
    q = {p["name"]: p for p in listing["parameters"]}
    assert q["limit"]["schema"]["minimum"] == 1 and q["limit"]["schema"]["maximum"] == 100
    assert q["cursor"]["schema"]["type"] == "string", "a query parameter is never null"
    assert {int(s) for s in listing["responses"]} == {200, 401, 403, 422, 500}  # 403: a key, not a user

    public = doc["paths"]["/v1/probes/public"]["get"]
    assert public["security"] == []
    assert {int(s) for s in public["responses"]} == {200, 500}


def test_error_statuses_rules():
    from api.endpoint import EndpointSpec

    def spec(**kw):
        base = dict(method="GET", rule="/x", handler_name="x", summary="", auth=KEY, scope=None,
                    body=None, query=None, response=None, many=False, status=200, tags=[], errors=[])
        base.update(kw)
        return EndpointSpec(**base)

    assert error_statuses(spec(), False) == [401, 403, 500]  # 403: a valid token of the other kind
    assert error_statuses(spec(auth=KEY_OR_USER), False) == [401, 500]
    assert error_statuses(spec(auth=NONE, method="POST", status=202), False) == [400, 409, 415, 422, 500]
    assert error_statuses(spec(scope="a:b", errors=[429]), True) == [401, 403, 404, 429, 500]
