"""The `/v1` REST API: schemas in and out, auth, idempotency, the envelope, errors, OpenAPI."""
