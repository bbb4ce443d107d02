"""The `/v1` blueprint every route module registers on."""

from flask import Blueprint

v1 = Blueprint("v1", __name__, url_prefix="/v1")
