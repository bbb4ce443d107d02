"""One decorator declares a route, and with it everything the contract asks of it.

    @endpoint(v1, "POST", "/merchant/api-keys", auth=KEY, scope="api_keys:manage",
              body=MintKeyIn, response=ApiKeyCreatedOut, status=201)
    def mint_key(ctx, body): ...

The decorator authenticates, checks the scope, parses and validates the JSON body and
query, applies idempotency to every mutation, runs the handler in one transaction,
dumps its result through the response schema and wraps it in the envelope. The same
declaration feeds the OpenAPI document, so the document cannot drift from the code.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Blueprint, current_app, request
from marshmallow import RAISE, Schema, ValidationError

from api import auth as auth_mod
from api.envelope import error_body, respond, success_body
from api.errors import ApiError, error_response, from_domain, is_stored_outcome
from core import errors as core_errors
from core import jsonbounds
from core.crypto import keyed_hash
from core.idempotency import fingerprint

log = logging.getLogger("soxara.api")

MUTATING = ("POST", "PATCH", "DELETE")
CODE_PREFIX = re.compile(r"^([A-Z][A-Z_]+): (.*)$", re.S)


@dataclass
class EndpointSpec:
    method: str
    rule: str
    handler_name: str
    summary: str
    auth: str
    scope: str | None
    body: type[Schema] | None
    query: type[Schema] | None
    response: type[Schema] | None
    many: bool
    status: int
    tags: list[str]
    errors: list[int]
    step_up: bool = False
    description: str = ""
    # A check of the caller against the body, run before the idempotency claim: a replay
    # goes only to a caller who may make the request (a narrow key must not be handed the
    # wide key another key minted under the same X-Idempotency-Key).
    authorize: Callable[[Ctx, dict], None] | None = None


REGISTRY: list[EndpointSpec] = []


@dataclass
class Ctx:
    runtime: object
    uow: object
    principal: auth_mod.Principal
    args: dict = field(default_factory=dict)
    path: dict = field(default_factory=dict)

    @property
    def settings(self):
        return self.runtime.settings


def runtime():
    return current_app.extensions["soxara"]


def _validation_error(err: ValidationError, schema: Schema) -> ApiError:
    messages = err.messages if isinstance(err.messages, dict) else {"_schema": err.messages}
    order = list(schema.fields)
    first = sorted(messages, key=lambda f: order.index(f) if f in order else -1)[0]
    msgs = messages[first]
    msg = msgs[0] if isinstance(msgs, list) and msgs and isinstance(msgs[0], str) else str(msgs)
    if msg == "Unknown field.":
        msg = f"unknown field {first!r}"
    code = "VALIDATION_ERROR"
    m = CODE_PREFIX.match(msg)
    if m:
        code, msg = m.group(1), m.group(2)
    elif first != "_schema":
        msg = f"{first}: {msg}"
    details = {"field": first} if first != "_schema" else {}
    return ApiError(422, code, msg, details or None)


def _json_body() -> dict:
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    mimetype = (request.mimetype or "").lower()
    if mimetype != "application/json":
        raise ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json")
    try:
        data = jsonbounds.parse(raw)
    except jsonbounds.BadJson as e:
        raise ApiError(400, "BAD_REQUEST", str(e)) from None
    if not isinstance(data, dict):
        raise ApiError(400, "BAD_REQUEST", "the body must be a JSON object")
    return data


# Text no database column can hold: NUL (PostgreSQL refuses it) and lone surrogates (not
# encodable as UTF-8; JSON's "\ud800" decodes to one). Refused at the edge, never a 500.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(value) -> bool:
    if isinstance(value, str):
        return _UNSTORABLE.search(value) is not None
    if isinstance(value, dict):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unstorable(v) for v in value)
    return False


def _refuse_unstorable(data: dict) -> None:
    for name, value in data.items():
        if _unstorable(name) or _unstorable(value):
            raise ApiError(422, "VALIDATION_ERROR", f"{name}: NUL characters and lone surrogates are not allowed",
                           {"field": name})


def _idempotency_key() -> str:
    key = request.headers.get("X-Idempotency-Key")
    if key is None or key == "":
        raise ApiError(400, "IDEMPOTENCY_KEY_REQUIRED", "send an X-Idempotency-Key header (1–255 characters) with every POST, PATCH and DELETE")
    if len(key) > 255:
        raise ApiError(400, "BAD_REQUEST", "X-Idempotency-Key must be 1–255 characters")
    if _unstorable(key):
        raise ApiError(400, "BAD_REQUEST", "X-Idempotency-Key must not contain NUL characters")
    return key


def endpoint(bp: Blueprint, method: str, rule: str, *, auth: str, scope: str | None = None,
             body: type[Schema] | None = None, query: type[Schema] | None = None,
             response: type[Schema] | None = None, many: bool = False, status: int = 200,
             summary: str = "", tags: list[str] | None = None, errors: list[int] | None = None,
             step_up: bool = False, authorize: Callable[[Ctx, dict], None] | None = None):
    def decorate(handler):
        spec = EndpointSpec(
            method=method, rule=rule, handler_name=handler.__name__,
            summary=summary or (handler.__doc__ or "").strip().split("\n")[0],
            description=(handler.__doc__ or "").strip(), auth=auth, scope=scope, body=body,
            query=query, response=response, many=many, status=status, tags=tags or [],
            errors=errors or [], step_up=step_up, authorize=authorize,
        )
        REGISTRY.append(spec)

        def view(**path):
            return _serve(spec, handler, path)

        view.__name__ = f"{handler.__name__}_{method.lower()}"
        view.endpoint_spec = spec  # the OpenAPI document joins the URL map to its declaration
        bp.add_url_rule(rule, endpoint=view.__name__, view_func=view, methods=[method])
        return handler

    return decorate


@functools.cache
def _instance(schema_cls: type[Schema]) -> Schema:
    """One instance per schema: building one deep-copies its fields, and load and dump
    keep no state between calls, so threads can share it."""
    return schema_cls(unknown=RAISE)


def _dump(spec: EndpointSpec, result):
    if spec.response is None:
        return result
    schema = _instance(spec.response)
    if spec.many:
        return {
            "items": schema.dump(result.items, many=True),
            "has_more": result.has_more,
            "next_cursor": result.next_cursor,
        }
    return schema.dump(result)


def _serve(spec: EndpointSpec, handler, path: dict):
    rt = runtime()
    with rt.uow() as uow:
        principal = auth_mod.authenticate(uow, rt, spec.auth)
        auth_mod.require_scope(principal, spec.scope)
        if spec.step_up:
            # Checked here, before the idempotency claim, so a refusal is never stored and
            # no route that declares step_up can forget it.
            auth_mod.require_step_up(Ctx(runtime=rt, uow=uow, principal=principal))
        if _unstorable(path):
            raise ApiError(404, "NOT_FOUND", "no such object")
        idem_key = _idempotency_key() if spec.method in MUTATING else None
        data = _json_body() if spec.method in MUTATING else {}
        _refuse_unstorable(data)
        loaded_body: dict = {}
        if spec.body is not None:
            schema = _instance(spec.body)
            try:
                loaded_body = schema.load(data)
            except ValidationError as e:
                raise _validation_error(e, schema) from None
        elif data:
            raise ApiError(422, "VALIDATION_ERROR", f"unknown field {sorted(data)[0]!r}: this route takes no body",
                           {"field": sorted(data)[0]})
        args: dict = {}
        if spec.query is not None:
            qschema = _instance(spec.query)
            raw_args = request.args.to_dict()
            _refuse_unstorable(raw_args)
            try:
                args = qschema.load(raw_args)
            except ValidationError as e:
                raise _validation_error(e, qschema) from None
        ctx = Ctx(runtime=rt, uow=uow, principal=principal, args=args, path=path)
        if spec.authorize is not None:
            spec.authorize(ctx, loaded_body)

        if idem_key is None:
            result = handler(ctx, loaded_body) if spec.body is not None else handler(ctx)
            return respond(spec.status, success_body(_dump(spec, result)))

        # A refusal above this line was never stored; from here on the outcome is.
        # Keyed: a body may hold a PIN or a login code, which a plain SHA-256 of a known
        # JSON shape would give up to anyone who reads the table.
        fp = keyed_hash(rt.secret_key, "idempotency", fingerprint(spec.method, request.path, data))
        scope = principal.idempotency_scope
        if principal.kind == "anonymous":
            # Anonymous calls (OTP requests...) share no account to scope the key by; scoping
            # by the body means a replay needs the very same body, secrets included.
            scope = "anon:" + fp[:32]
        claim = rt.idempotency.claim(uow, scope, idem_key, fp)
        if claim.outcome != "run":
            return _answer_claim(claim)

        try:
            result = handler(ctx, loaded_body) if spec.body is not None else handler(ctx)
            body_bytes = success_body(_dump(spec, result))
            first = rt.idempotency.commit(uow, claim, spec.status, body_bytes)
            return _answer_claim(first) if first is not None else respond(spec.status, body_bytes)
        except core_errors.SoxaraError as e:
            uow.rollback()
            api_err = from_domain(e)
            if not is_stored_outcome(e):
                rt.idempotency.release(claim)
                return error_response(api_err)
            body_bytes = error_body(api_err.code, api_err.message, api_err.details)
            first = rt.idempotency.store_refusal(claim, api_err.status, body_bytes)
            if first is not None:
                return _answer_claim(first)
            return respond(api_err.status, body_bytes, api_err.headers)
        except BaseException:  # a bug (500), or the client gone: a retry runs afresh
            uow.rollback()
            rt.idempotency.release(claim)
            raise


def _answer_claim(claim):
    if claim.outcome == "replay":
        return respond(claim.status, claim.body or b"", {"Idempotent-Replayed": "true"})
    if claim.outcome == "conflict":
        raise ApiError(409, "IDEMPOTENCY_CONFLICT", "this X-Idempotency-Key was used with a different request")
    raise ApiError(409, "IDEMPOTENCY_IN_PROGRESS", "a request with this X-Idempotency-Key is still running; retry shortly")
