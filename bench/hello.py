"""The baseline for bench/api.py: a bare Flask route, no database, no auth.

Served by the very gunicorn settings the product is, so the ratio of a product route to
this one is what Soxara itself costs on top of Flask and gunicorn. Not part of the product.
"""

from __future__ import annotations

import json

from flask import Flask, Response

app = Flask("hello")
BODY = json.dumps({"success": True, "data": {"hello": "world"}}, separators=(",", ":")).encode()


@app.get("/hello")
def hello():
    return Response(BODY, mimetype="application/json")
