"""The OpenAPI 3.1 document, built from the endpoint registry and its marshmallow schemas.

Every `/v1` route is declared once with `@endpoint` (api/endpoint.py); the declaration
(auth, scope, body, query and response schemas, status, errors) is what the route runs
on and what this module documents. The document is built from the app's URL map, so it
lists exactly the routes the app serves, with their real paths, joined with each view's
`EndpointSpec`. A route added anywhere with `@endpoint` appears here without anyone
touching this file.

Served at `GET /openapi.json` and `GET /openapi.yaml` (the raw document, no envelope).

Rules of the document, beyond what apispec derives from the schemas:
- the success body is the envelope `{"success": true, "data": …}` around the response
  schema (a keyset page `{"items", "has_more", "next_cursor"}` for lists);
- every status a route can give is listed with the error envelope: the route's declared
  `errors`, plus 401 (unless anonymous), 403 (scope or step-up), 404 (path parameters),
  400/409/415/422 (every mutation), 422 (a query schema) and 500 (always);
- every POST, PATCH and DELETE takes the `X-Idempotency-Key` header (required, 1–255);
- a schema used only in responses lists every property as required (a dump always
  writes every field; absent values are `null`) and stays open to new properties, while
  a request schema is closed (`additionalProperties: false`: unknown fields are 422).
"""

from __future__ import annotations

import json
import re
import threading
from importlib import metadata as importlib_metadata

import yaml
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, Response, current_app
from marshmallow import fields as ma_fields

from api.auth import KEY, KEY_OR_USER, NONE, USER
from api.blueprint import ObjectId
from api.endpoint import MUTATING, EndpointSpec
from api.schemas.fields import Amount, Currency, Phone
from core.amounts import CURRENCIES, MAX_AMOUNT

OPENAPI_VERSION = "3.1.0"
EXTENSION_KEY = "soxara.openapi"

KEY_SCHEME = "merchantApiKey"
USER_SCHEME = "userAccessToken"

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"

DESCRIPTION = """\
Soxara's merchant and app API. Conventions that hold on every `/v1` route:

- **Auth**: `Authorization: Bearer <token>`, either a merchant API key
  (`sxm_test_…` / `sxm_live_…`) or a user access token from `/v1/auth/verify-otp`.
  Missing, malformed, expired or revoked: 401 `UNAUTHORIZED`. A key without the route's
  scope: 403 `FORBIDDEN`, the message names the scope. A valid token of the kind the
  route does not take (a user's token on a merchant route, a key on a user's): 403
  `FORBIDDEN`.
- **Envelope**: success `{"success": true, "data": …}`; error
  `{"success": false, "error": {"code", "message", "details"?}}`. Clients switch on `code`.
- **Idempotency**: every POST, PATCH and DELETE requires `X-Idempotency-Key` (1–255
  characters). A retry with the same key and body replays the original response with
  `Idempotent-Replayed: true`; another body is 409 `IDEMPOTENCY_CONFLICT`.
- **Money**: integer minor units (`1250` = 12.50); `currency` is `USD` or `LRD`.
- **Lists**: `data` is `{"items", "has_more", "next_cursor"}`; `limit` 1–100 (20),
  `cursor` opaque, newest first.
- **Trace ids**: every response carries `X-Trace-Id`.
"""

# status -> (description, the stable codes it carries)
ERROR_STATUSES: dict[int, tuple[str, list[str]]] = {
    400: ("Malformed: bad JSON, body not an object, missing or over-long X-Idempotency-Key.",
          ["BAD_REQUEST", "IDEMPOTENCY_KEY_REQUIRED"]),
    401: ("No, malformed, expired or revoked token.", ["UNAUTHORIZED"]),
    403: ("The key lacks the route's scope, or a role or step-up is missing.",
          ["FORBIDDEN", "STEP_UP_REQUIRED"]),
    404: ("No such object (or another merchant's, or the other mode's), or no such route.",
          ["NOT_FOUND"]),
    405: ("Method not allowed on this route.", ["METHOD_NOT_ALLOWED"]),
    409: ("Idempotency key reused with another body or still running; or the object's state "
          "forbids the operation.", ["IDEMPOTENCY_CONFLICT", "IDEMPOTENCY_IN_PROGRESS", "INVALID_STATE"]),
    415: ("The body is not application/json.", ["UNSUPPORTED_MEDIA_TYPE"]),
    422: ("Well-formed but invalid values; `details.field` names the field.",
          ["VALIDATION_ERROR", "INVALID_PHONE_NUMBER", "INVALID_CURRENCY", "AMOUNT_TOO_SMALL",
           "AMOUNT_TOO_LARGE", "INSUFFICIENT_FUNDS", "REFUND_EXCEEDS_PAYMENT",
           "GIFT_CARD_INSUFFICIENT_BALANCE", "CLAIM_EXPIRED", "INVALID_ACCOUNT_NUMBER"]),
    429: ("Rate limited; retry after `Retry-After` seconds.", ["RATE_LIMITED"]),
    500: ("A bug on our side; the trace id identifies it. No stack trace in the body.",
          ["INTERNAL_ERROR"]),
    502: ("A payment rail or other upstream failed.", ["UPSTREAM_ERROR"]),
    503: ("A dependency is down.", ["SERVICE_UNAVAILABLE"]),
}

_RULE_VAR = re.compile(r"<(?:(?P<conv>[a-zA-Z_][a-zA-Z0-9_]*)(?:\((?P<args>[^)]*)\))?:)?(?P<var>[a-zA-Z_][a-zA-Z0-9_]*)>")


def _api_version() -> str:
    try:
        return importlib_metadata.version("soxara")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "0.0.0"


# --- custom fields --------------------------------------------------------------------------


def _soxara_fields(self, field, ret, **kw) -> dict:
    """JSON Schema for the contract's own fields (runs after apispec's attribute functions)."""
    out: dict = {}
    if isinstance(field, Amount):
        out.update(minimum=1, maximum=MAX_AMOUNT)
    elif isinstance(field, Currency):
        out["enum"] = list(CURRENCIES) + ([None] if field.allow_none else [])
    elif isinstance(field, Phone):
        out.setdefault("format", "e164")
        out.setdefault("pattern", E164_PATTERN)
        out.setdefault("description", ret.get("description") or "E.164 phone number")
    elif isinstance(field, ma_fields.Constant):
        value = field.constant
        out["const"] = value
        json_type = {str: "string", bool: "boolean", int: "integer", float: "number"}.get(type(value))
        if json_type and "type" not in ret:
            out["type"] = json_type
    elif "type" not in ret and ret.get("enum") and all(isinstance(v, str) for v in ret["enum"]):
        out["type"] = "string"  # a Method/Function field documented by its enum
    pattern = ret.get("pattern")
    if pattern and (pattern.startswith("\\A") or pattern.endswith("\\Z")):
        # Python's anchors (a "$" there lets a final newline through) in ECMA-262's words,
        # where "^" and "$" anchor the whole string.
        out["pattern"] = "^" + pattern.removeprefix("\\A").removesuffix("\\Z") + "$"
    return out


# --- building ---------------------------------------------------------------------------------


def _path_and_params(rule: str) -> tuple[str, list[dict]]:
    params: list[dict] = []

    def sub(m: re.Match) -> str:
        conv, name = (m.group("conv") or "default"), m.group("var")
        if conv == "int":
            schema: dict = {"type": "integer", "minimum": 0}
        elif conv == "float":
            schema = {"type": "number"}
        elif conv == "uuid":
            schema = {"type": "string", "format": "uuid"}
        elif conv == "path":
            schema = {"type": "string", "minLength": 1}
        elif conv == "id":
            schema = {"type": "string", "pattern": "^" + ObjectId.regex + "$"}
        else:
            schema = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
        params.append({"in": "path", "name": name, "required": True, "schema": schema})
        return "{" + name + "}"

    return _RULE_VAR.sub(sub, rule), params


def error_statuses(spec: EndpointSpec, has_path_params: bool) -> list[int]:
    """Every status other than the success one that this route can give."""
    statuses = set(spec.errors)
    if spec.auth != NONE:
        statuses.add(401)
    if spec.scope or spec.step_up or spec.auth in (KEY, USER):  # KEY, USER: the other kind of token
        statuses.add(403)
    if spec.method in MUTATING:
        statuses.update((400, 409, 415, 422))
    if spec.body is not None or spec.query is not None:
        statuses.add(422)
    if has_path_params:
        statuses.add(404)
    statuses.add(500)
    statuses.discard(spec.status)
    return sorted(statuses)


def _security(spec: EndpointSpec) -> list[dict]:
    # OpenAPI 3.1 lets a non-OAuth requirement list role names: we list the key's scope.
    key_req = {KEY_SCHEME: [spec.scope] if spec.scope else []}
    user_req: dict[str, list[str]] = {USER_SCHEME: []}
    return {KEY: [key_req], USER: [user_req], KEY_OR_USER: [key_req, user_req], NONE: []}.get(spec.auth, [])


def _query_param(param: dict) -> dict:
    """A query string has no null: `load_default=None` means "may be absent", not nullable."""
    schema = param.get("schema", {})
    types = schema.get("type")
    if isinstance(types, list) and "null" in types:
        rest = [t for t in types if t != "null"]
        schema["type"] = rest[0] if len(rest) == 1 else rest
        if schema.get("default", 0) is None:
            del schema["default"]
    return param


def _envelope(data_schema: dict) -> dict:
    return {
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"const": True}, "data": data_schema},
    }


def _page(item_schema: dict) -> dict:
    return {
        "type": "object",
        "required": ["items", "has_more", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": item_schema},
            "has_more": {"type": "boolean"},
            "next_cursor": {"type": ["string", "null"],
                            "description": "pass as `cursor` for the next page; null on the last page"},
        },
    }


def _operation(spec: EndpointSpec, path_params: list[dict], converter, op_ids: set) -> dict:
    op_id = spec.handler_name
    if op_id in op_ids:
        op_id = f"{op_id}_{spec.method.lower()}"
    n = 2
    while op_id in op_ids:
        op_id, n = f"{spec.handler_name}_{n}", n + 1
    op_ids.add(op_id)

    description = spec.description
    if spec.scope:
        description += f"\n\nAn API key needs the `{spec.scope}` scope."
    op: dict = {
        "operationId": op_id,
        "summary": spec.summary or op_id.replace("_", " "),
        "tags": spec.tags or ["Other"],
        "security": _security(spec),
        "x-soxara-auth": spec.auth,
    }
    if description:
        op["description"] = description
    if spec.scope:
        op["x-soxara-scope"] = spec.scope

    params: list[dict | str] = list(path_params)
    if spec.query is not None:
        for qp in converter.schema2parameters(spec.query, location="query"):
            params.append(_query_param(qp))
    if spec.method in MUTATING:
        params.append("IdempotencyKey")  # apispec turns a name into a $ref
    if spec.step_up:
        params.append("StepUpToken")
    if params:
        op["parameters"] = params

    if spec.body is not None:
        required = any(f.required for f in spec.body().load_fields.values())
        op["requestBody"] = {
            "required": required,
            "content": {"application/json": {"schema": converter.resolve_nested_schema(spec.body)}},
        }

    if spec.response is None:
        data: dict = {}
    else:
        ref = converter.resolve_nested_schema(spec.response)
        data = _page(ref) if spec.many else ref
    headers = {"X-Trace-Id": {"$ref": "#/components/headers/X-Trace-Id"}}
    if spec.method in MUTATING:
        headers["Idempotent-Replayed"] = {"$ref": "#/components/headers/Idempotent-Replayed"}
    ok_desc = {200: "OK", 201: "Created", 202: "Accepted: the work continues asynchronously"}
    responses: dict = {
        str(spec.status): {
            "description": ok_desc.get(spec.status, "Success"),
            "headers": headers,
            "content": {"application/json": {"schema": _envelope(data)}},
        }
    }
    for status in error_statuses(spec, bool(path_params)):
        responses[str(status)] = {"$ref": f"#/components/responses/{_error_response_name(status)}"}
    op["responses"] = responses
    return op


def _error_response_name(status: int) -> str:
    return f"Error{status}"


def _components(spec: APISpec) -> None:
    c = spec.components
    c.security_scheme(KEY_SCHEME, {
        "type": "http", "scheme": "bearer", "bearerFormat": "sxm_test_… | sxm_live_…",
        "description": (
            "A merchant API key: `sxm_test_` or `sxm_live_`, an 8-character public prefix, then a "
            "32-character secret (49 characters in all). Shown once at mint. The key's mode "
            "decides test or live. Each key carries scopes; the operation's requirement lists "
            "the scope it needs."
        ),
    })
    c.security_scheme(USER_SCHEME, {
        "type": "http", "scheme": "bearer", "bearerFormat": "opaque",
        "description": (
            "A user access token from `POST /v1/auth/verify-otp` (Soxara's own surfaces: the "
            "WhatsApp bot, the mobile app). Short-lived; renew with `POST /v1/auth/refresh`."
        ),
    })
    c.schema("Error", {
        "type": "object",
        "description": "The error envelope.",
        "required": ["success", "error"],
        "properties": {
            "success": {"const": False},
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "pattern": "^[A-Z][A-Z0-9_]*$",
                             "description": "stable UPPER_SNAKE code; switch on this"},
                    "message": {"type": "string", "description": "for people; may change"},
                    "details": {"type": "object", "description": "e.g. `field` for a 422"},
                },
            },
        },
    })
    c.header("X-Trace-Id", {"description": "This request's trace id, also on its log lines.",
                            "schema": {"type": "string"}})
    c.header("Idempotent-Replayed", {
        "description": "`true` when this is the stored response of an earlier request with the same key.",
        "schema": {"type": "string", "enum": ["true"]},
    })
    c.header("Retry-After", {"description": "Seconds to wait before retrying.",
                             "schema": {"type": "integer", "minimum": 0}})
    c.parameter("IdempotencyKey", "header", {
        "name": "X-Idempotency-Key", "required": True,
        "description": ("Makes the request safe to retry: per merchant and mode (per user for user "
                        "tokens), kept 24 h. Missing: 400 `IDEMPOTENCY_KEY_REQUIRED`."),
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    })
    c.parameter("StepUpToken", "header", {
        "name": "X-Step-Up-Token", "required": False,
        "description": ("For user tokens: the token from `POST /v1/auth/step-up` (5 minutes); "
                        "without it a user's call is 403 `STEP_UP_REQUIRED`."),
        "schema": {"type": "string", "minLength": 1},
    })
    for status, (desc, codes) in ERROR_STATUSES.items():
        headers = {"X-Trace-Id": {"$ref": "#/components/headers/X-Trace-Id"}}
        if status == 429:
            headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
        c.response(_error_response_name(status), {
            "description": f"{desc} Codes: {', '.join(f'`{x}`' for x in codes)}.",
            "headers": headers,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        })


def _refs_in(node, out: set) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            out.add(ref.rsplit("/", 1)[1])
        for v in node.values():
            _refs_in(v, out)
    elif isinstance(node, list):
        for v in node:
            _refs_in(v, out)


def _finish_schemas(doc: dict) -> None:
    """Response-only schemas: every property required, open to new ones (see module doc)."""
    schemas = doc.get("components", {}).get("schemas", {})
    request_side: set = set()
    for item in doc.get("paths", {}).values():
        for op in item.values():
            _refs_in(op.get("requestBody", {}), request_side)
            _refs_in(op.get("parameters", []), request_side)
    # Close over nesting: a schema nested in a request schema is request-side too.
    frontier = set(request_side)
    while frontier:
        found: set = set()
        for name in frontier:
            _refs_in(schemas.get(name, {}), found)
        frontier = found - request_side
        request_side |= found
    for name, schema in schemas.items():
        if name in request_side or name == "Error" or schema.get("type") != "object":
            continue
        if schema.get("additionalProperties") is False:
            del schema["additionalProperties"]
        props = schema.get("properties", {})
        req = [k for k, v in props.items() if not v.get("writeOnly")]
        if req:
            schema["required"] = sorted(req)


def build_spec(app: Flask, *, server_url: str | None = None) -> dict:
    """The document for what `app` serves: every view declared with `@endpoint`."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Soxara API", version=_api_version(), openapi_version=OPENAPI_VERSION,
        plugins=[plugin],
        info={"description": DESCRIPTION},
        servers=[{"url": server_url}] if server_url else [],
    )
    assert plugin.converter is not None  # made by APISpec when it took the plugin
    plugin.converter.add_attribute_function(_soxara_fields)
    _components(spec)

    by_path: dict[str, dict] = {}
    tags: list[str] = []
    op_ids: set = set()
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, sorted(r.methods or [])))
    for rule in rules:
        view = app.view_functions.get(rule.endpoint)
        espec: EndpointSpec | None = getattr(view, "endpoint_spec", None)
        if espec is None:
            continue
        path, path_params = _path_and_params(rule.rule)
        by_path.setdefault(path, {})[espec.method.lower()] = _operation(
            espec, path_params, plugin.converter, op_ids)
        for t in espec.tags or ["Other"]:
            if t not in tags:
                tags.append(t)
    for path, operations in by_path.items():
        spec.path(path=path, operations=operations)
    for t in tags:
        spec.tag({"name": t})

    doc = spec.to_dict()
    _finish_schemas(doc)
    order = ["openapi", "info", "servers", "tags", "paths", "components"]
    return {k: doc[k] for k in order if k in doc} | {k: v for k, v in doc.items() if k not in order}


# --- serving ----------------------------------------------------------------------------------

_lock = threading.Lock()


def document(app: Flask) -> dict:
    """The app's document, built once on first use (after every blueprint is registered)."""
    cached = app.extensions.get(EXTENSION_KEY)
    if cached is None:
        with _lock:
            cached = app.extensions.get(EXTENSION_KEY)
            if cached is None:
                settings = app.config.get("SOXARA_SETTINGS")
                doc = build_spec(app, server_url=getattr(settings, "public_url", None))
                cached = {
                    "doc": doc,
                    "json": json.dumps(doc, ensure_ascii=False, indent=2).encode(),
                    "yaml": yaml.safe_dump(doc, sort_keys=False, allow_unicode=True).encode(),
                }
                app.extensions[EXTENSION_KEY] = cached
    return cached


def install(app: Flask) -> None:
    @app.get("/openapi.json")
    def openapi_json():
        return Response(document(current_app)["json"], mimetype="application/json")

    @app.get("/openapi.yaml")
    def openapi_yaml():
        return Response(document(current_app)["yaml"], mimetype="application/yaml")
