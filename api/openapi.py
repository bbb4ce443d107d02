"""The OpenAPI 3.1 document, built from the endpoint registry and its marshmallow schemas."""

from __future__ import annotations

from flask import Flask


def install(app: Flask) -> None:
    pass
