"""Schemathesis against the app's own OpenAPI document, in process (WSGI).

One test per operation in the document and per kind of caller it takes, so routes added
later join on their own: a merchant API key holding every scope, a logged-in user's
access token (with a step-up token for routes that want one) through the helpers of
tests/conftest.py (see `_user_headers`), or nobody for anonymous routes.

Checks: no 5xx, and the status code, content type and body of every response conform to
the document. Cases are both valid (positive) and invalid (negative) per the document.
Bounded and deterministic: SOXARA_FUZZ_EXAMPLES cases per operation (default 40),
derandomized, no example database. To dig deeper locally:
`SOXARA_FUZZ_EXAMPLES=500 SOXARA_FUZZ_SEED=7 pytest tests/api/test_fuzz.py`.

(Schemathesis's own pytest loader, `schemathesis.pytest.from_fixture`, trips over pytest
9's node ids, so the operations are parametrized here and each is driven through the
public `APIOperation.as_strategy` with Hypothesis.)
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

FUZZ_EXAMPLES = int(os.environ.get("SOXARA_FUZZ_EXAMPLES", "40"))
FUZZ_SEED = os.environ.get("SOXARA_FUZZ_SEED")  # set: other cases than the derandomized ones
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance,
          content_type_conformance]
METHODS = ("get", "put", "post", "patch", "delete")

# Valid numbers, so positive cases get past phone parsing: Liberian sandbox rails and others.
E164_SAMPLES = ["+231881111000", "+231881111001", "+231771111000", "+231881158457",
                "+14155552671", "+447911123456"]
schemathesis.openapi.format("e164", st.sampled_from(E164_SAMPLES))


# Who calls an operation, by its `x-soxara-auth`: routes taking either kind run once as each.
PRINCIPALS = {"key": ["key"], "user": ["user"], "key_or_user": ["key", "user"], "none": ["anonymous"]}


def _document_operations() -> list[tuple[str, str, str]]:
    """(METHOD, path, principal) for every operation the app factory's app documents.

    Built at collection time from the real factory on a database it never opens.
    """
    from api.app import create_app
    from api.openapi import document
    from tests.conftest import build_runtime, make_settings

    rt = build_runtime(make_settings("sqlite://"))
    try:
        doc = document(create_app(runtime=rt))["doc"]
    finally:
        rt.dispose()
    return [(m.upper(), p, who)
            for p, item in doc["paths"].items() for m, op in item.items() if m in METHODS
            for who in PRINCIPALS.get(op.get("x-soxara-auth"), ["key"])]


OPERATIONS = _document_operations()


def _user_headers(client, runtime) -> dict:
    """A logged-in user's Authorization and X-Step-Up-Token, made with tests/conftest.py's
    helpers (imported, not looked up: a helper renamed must fail here, not skip every
    user operation)."""
    from tests.conftest import set_user_pin, step_up_token, user_token

    token = user_token(client, runtime)
    set_user_pin(client, token)
    return {"Authorization": f"Bearer {token}", "X-Step-Up-Token": step_up_token(client, token)}


@pytest.mark.parametrize("method,path,principal", OPERATIONS,
                         ids=[f"{m} {p} as {who}" for m, p, who in OPERATIONS])
def test_operation_conforms_to_the_document(app, client, runtime, merchant, method, path, principal):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operation = schema[path][method]
    if principal == "key":
        headers = {"Authorization": f"Bearer {merchant[1]}"}
    elif principal == "user":
        headers = _user_headers(client, runtime)
    else:
        headers = {}
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(max_examples=FUZZ_EXAMPLES, derandomize=FUZZ_SEED is None, database=None, deadline=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    def fuzz(case):
        # These headers win over generated ones (a generated token could only be refused);
        # negative cases that drop or mangle the credentials still reach the app.
        case.call_and_validate(headers=headers, checks=CHECKS)

    if FUZZ_SEED is not None:
        fuzz = seed(int(FUZZ_SEED))(fuzz)
    fuzz()


def test_every_documented_operation_is_fuzzed(client):
    """The parametrization above was taken from the same document the app serves."""
    doc = client.get("/openapi.json").get_json()
    served = [(m.upper(), p) for p, item in doc["paths"].items() for m in item if m in METHODS]
    assert sorted(served) == sorted({(m, p) for m, p, _ in OPERATIONS})
