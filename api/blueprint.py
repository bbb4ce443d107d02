"""The `/v1` blueprint every route module registers on, and how its paths name objects."""

from flask import Blueprint
from werkzeug.routing import BaseConverter

v1 = Blueprint("v1", __name__, url_prefix="/v1")


class ObjectId(BaseConverter):
    """An object's id in a path (`tr_…`, `wal_…`): a lowercase prefix, `_`, letters and
    digits. A sibling route's own word is then no id: `GET /v1/transfers/claim` is 405
    (that route takes POST), not a search for a transfer called "claim"."""

    regex = r"[a-z]+_[A-Za-z0-9]+"


CONVERTERS = {"id": ObjectId}
