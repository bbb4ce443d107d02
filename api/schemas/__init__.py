"""Marshmallow schemas: what each route takes and gives. The OpenAPI document is built from them."""
