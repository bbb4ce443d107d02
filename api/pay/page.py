"""`GET /pay/{id}?client_secret=…` and its form's `POST /pay/{id}`: the views.

GET shows the payment as it is now: the methods to pay with while it is payable, what the
customer must do while it waits (with a meta refresh, so the page follows it without
JavaScript), the outcome once it has one. POST confirms the payment with what the
customer typed through core (payments.confirm, the same as the API's confirm) and
answers 303 to the GET, so a reload never posts again. A test card waiting for its 3-D
Secure step shows the step's two outcomes, whose form `POST /pay/{id}/authenticate` sends
to core (payments.authenticate) the same way.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
import urllib.parse
from collections.abc import Callable
from importlib import resources

from flask import Blueprint, Response, current_app, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from api.pay import forms, words
from core import rails
from core.amounts import format_amount
from core.crypto import keyed_hash
from core.db import database_unavailable
from core.errors import (
    InsufficientFunds,
    InvalidInput,
    InvalidState,
    NotFound,
    SoxaraError,
    Unavailable,
)
from core.idempotency import fingerprint
from core.payments import payments
from core.phones import local_form

log = logging.getLogger("soxara.pay")

pay = Blueprint("pay", __name__, template_folder="templates")

REFRESH_SECONDS = 3
IN_PROGRESS_WAIT = 5.0  # a double tap waits this long at most for the first tap's answer

CSS = resources.files("api.pay").joinpath("pay.css").read_text(encoding="utf-8")
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
HEADERS = {
    # The page holds the client secret (in its URL and forms): no cache or proxy keeps it,
    # no other site frames it (clickjacking a Pay button), no link hands it on as a Referer.
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
}


def _runtime():
    return current_app.extensions["soxara"]


def _page(status: int, **context) -> Response:
    context.setdefault("payment", None)
    context.setdefault("methods", [])
    context.setdefault("lines", [])
    html = render_template("pay.html", css=CSS, test_mode=words.TEST_MODE, **context)
    return Response(html, status=status, headers=HEADERS, content_type="text/html; charset=utf-8")


def _not_found() -> Response:
    # The same page for an unknown id and a wrong secret: nothing tells them apart.
    return _page(404, title=words.NOT_FOUND_TITLE, state="failed", lines=[words.NOT_FOUND])


def _url(payment_id: str, client_secret: str) -> str:
    return url_for("pay.show", payment_id=payment_id) + "?" + urllib.parse.urlencode(
        {"client_secret": client_secret})


def _see(payment_id: str, client_secret: str) -> Response:
    resp = Response(status=303, headers=HEADERS)
    resp.headers["Location"] = _url(payment_id, client_secret)
    return resp


def _shown_phone(e164: str | None) -> str:
    """A number as its owner writes it: Liberian ones in the local form (0886…)."""
    if not e164:
        return ""
    return local_form(e164) if e164.startswith("+231") else e164


def _summary(uow, p: payments.Payment) -> dict:
    return {"merchant": payments.merchant_name(uow, p), "amount": format_amount(p.amount, p.currency),
            "description": p.description, "test": not p.livemode}


def _methods(p: payments.Payment, error: forms.FormError | None, typed_phone: str | None) -> list[dict]:
    chosen = error.method if error and error.method else (p.method or "soxara_wallet")
    out = []
    for m in payments.METHODS:
        if m == "card" and p.livemode:
            continue  # cards are taken in test mode only (core refuses them live)
        name = words.METHOD_NAMES[m]
        if m == "soxara_wallet":
            label, hint = words.PHONE_WALLET, words.HINT_WALLET
        elif m == "card":
            label, hint = "", words.HINT_CARD
        else:
            label, hint = words.PHONE_MOMO.format(method=name), words.HINT_MOMO.format(method=name)
        phone = ""
        if m == chosen and typed_phone is not None:
            phone = typed_phone  # what they typed, to correct it (never a card's number)
        elif m != "card":
            phone = _shown_phone(p.payer_phone or p.customer_phone)
        out.append({"type": m, "name": name, "label": label, "hint": hint, "phone": phone,
                    "open": m == chosen, "error": error.message if error and error.method == m else None})
    return out


def _state(uow, p: payments.Payment) -> dict:
    """The title, lines and refresh of the page for the payment as it is now."""
    merchant, amount = payments.merchant_name(uow, p), format_amount(p.amount, p.currency)
    phone = _shown_phone(p.payer_phone)
    method = words.METHOD_NAMES.get(p.method or "", "")
    code = p.last_error_code
    if p.status == "requires_payment_method":
        if code is None:
            return {"state": "payable", "title": f"Pay {merchant}", "lines": []}
        expired = code in words.EXPIRED
        return {"state": "expired" if expired else "failed",
                "title": words.EXPIRED_TITLE if expired else words.FAILED_TITLE,
                "lines": [words.reason(code), words.NOTHING_TAKEN, words.TRY_AGAIN]}
    if p.status == "requires_action":
        if p.method == "soxara_wallet":
            return {"state": "waiting", "title": words.WAITING_WALLET_TITLE, "refresh": REFRESH_SECONDS,
                    "lines": [words.WAITING_WALLET.format(phone=phone), words.UPDATES_ITSELF]}
        if p.method in rails.MOBILE_MONEY:
            return {"state": "waiting", "title": words.WAITING_MOMO_TITLE, "refresh": REFRESH_SECONDS,
                    "lines": [words.WAITING_MOMO.format(method=method, phone=phone, amount=amount),
                              words.UPDATES_ITSELF]}
        # A test card: the customer does the step here (no refresh under their finger).
        return {"state": "waiting", "title": words.CARD_CHECK_TITLE, "lines": [words.CARD_CHECK]}
    if p.status == "processing":
        return {"state": "waiting", "title": words.PROCESSING_TITLE, "refresh": REFRESH_SECONDS,
                "lines": [words.PROCESSING, words.UPDATES_ITSELF]}
    if p.status == "succeeded":
        lines = [words.PAID.format(amount=amount, merchant=merchant)]
        if p.amount_refunded:
            lines.append(words.REFUNDED.format(amount=format_amount(p.amount_refunded, p.currency)))
        return {"state": "succeeded", "title": words.PAID_TITLE, "lines": lines, "ref": p.id}
    if p.status == "canceled":
        return {"state": "canceled", "title": words.CANCELED_TITLE, "lines": [words.CANCELED.format(merchant=merchant)]}
    expired = code in words.EXPIRED
    return {"state": "expired" if expired else "failed",
            "title": words.EXPIRED_TITLE if expired else words.FAILED_TITLE,
            "lines": [words.reason(code), words.NOTHING_TAKEN, words.ASK_AGAIN.format(merchant=merchant)]}


def _show(uow, rt, p: payments.Payment, client_secret: str, *, status: int = 200,
          error: forms.FormError | None = None, typed_phone: str | None = None) -> Response:
    state = _state(uow, p)
    context = {**state, "payment": _summary(uow, p)}
    if p.status == "requires_payment_method":
        context["methods"] = _methods(p, error, typed_phone)
        context["form"] = forms.new_form(rt, p.id, client_secret)
        context["action"] = url_for("pay.submit", payment_id=p.id)
        if error is not None and not error.method:
            context["lines"] = [error.message]
    elif _authenticable(p):
        context["authenticate"] = {"form": forms.new_form(rt, p.id, client_secret),
                                   "action": url_for("pay.authenticate", payment_id=p.id),
                                   "outcomes": words.AUTHENTICATE_OUTCOMES}
    return _page(status, **context)


def _authenticable(p: payments.Payment) -> bool:
    """A test card payment waiting for its 3-D Secure step (core judges it again, locked)."""
    return p.status == "requires_action" and p.method == "card" and not p.livemode


def _payment(uow, rt, payment_id: str, client_secret: str | None) -> payments.Payment | None:
    """The payment for the holder of its client secret; None for a wrong secret exactly as
    for an unknown id (or a malformed one, never looked up)."""
    if not forms.shaped(payment_id, client_secret):
        return None
    try:
        return payments.get_with_secret(uow, rt, payment_id, client_secret)
    except NotFound:
        return None


@pay.get("/pay/<payment_id>")
def show(payment_id: str):
    client_secret = request.args.get("client_secret")
    rt = _runtime()
    with rt.uow() as uow:
        p = _payment(uow, rt, payment_id, client_secret)
        if p is None or client_secret is None:
            return _not_found()
        return _show(uow, rt, p, client_secret)


@pay.post("/pay/<payment_id>")
def submit(payment_id: str):
    form = request.form
    rt = _runtime()
    with rt.uow() as uow:
        posted = _posted(uow, rt, payment_id, form)
        if isinstance(posted, Response):
            return posted
        p, client_secret, attempt = posted
        if p.status != "requires_payment_method":
            return _see(p.id, client_secret)  # paid or under way already: the page says which
        try:
            method = forms.read_method(form, p)
        except forms.FormError as e:
            typed = (form.get("phone") or "")[:32] if e.method != "card" else None
            return _show(uow, rt, p, client_secret, status=422, error=e, typed_phone=typed)
        return _confirm(uow, rt, p, client_secret, attempt, method)


def _posted(uow, rt, payment_id: str, form) -> tuple[payments.Payment, str, str] | Response:
    """A form posted to this page: the payment, its secret and the form's attempt id, or the
    page that refuses it (the unknown-id 404 for a wrong secret, 403 for a missing token)."""
    client_secret = form.get("client_secret")
    p = _payment(uow, rt, payment_id, client_secret)
    if p is None or client_secret is None:
        return _not_found()
    attempt = form.get("attempt")
    if attempt is None or not forms.token_ok(rt, p.id, client_secret, attempt, form.get("csrf")):
        return _forged(uow, p, client_secret)
    return p, client_secret, attempt


def _forged(uow, p: payments.Payment, client_secret: str) -> Response:
    """A form without this page's token (403): nothing moves."""
    return _page(403, title=words.FORM_EXPIRED_TITLE, state="failed", lines=[words.FORM_EXPIRED],
                 payment=_summary(uow, p), link={"href": _url(p.id, client_secret), "text": words.OPEN_AGAIN})


@pay.post("/pay/<payment_id>/authenticate")
def authenticate(payment_id: str):
    """A test card's 3-D Secure step, completed or failed, once per attempt."""
    form = request.form
    rt = _runtime()
    with rt.uow() as uow:
        posted = _posted(uow, rt, payment_id, form)
        if isinstance(posted, Response):
            return posted
        p, client_secret, attempt = posted
        outcome = form.get("outcome")
        if outcome not in words.AUTHENTICATE_OUTCOMES or not _authenticable(p):
            return _see(p.id, client_secret)  # done, expired or never asked: the page says which
        pid, completed = p.id, outcome == "complete"
        return _once(uow, rt, pid, client_secret, attempt, f"/pay/{pid}/authenticate", {"outcome": outcome},
                     lambda: payments.authenticate(uow, rt, pid, completed=completed),
                     lambda e: _see(pid, client_secret) if isinstance(e, InvalidState) else None)


def _confirm(uow, rt, p: payments.Payment, client_secret: str, attempt: str,
             method: payments.PaymentMethod) -> Response:
    """Confirm once per attempt (core.idempotency, as the API's confirm), then show the
    payment. A refusal that leaves it payable is said on the form, and the attempt's key
    is given back: nothing moved, so the customer may correct and send again."""
    # Confirm under the payment's row lock (payments.confirm wants it taken by the
    # caller): two tabs' forms, each its own attempt, then take turns, and the second
    # finds the payment no longer payable.
    pid = p.id  # the row is expired by a rollback: no reload to learn its id
    return _once(uow, rt, pid, client_secret, attempt, f"/pay/{pid}", forms.attempt_fingerprint(method),
                 lambda: payments.confirm(uow, rt, payments.locked(uow, pid), method),
                 lambda e: _refused(uow, rt, pid, client_secret, method, e))


def _once(uow, rt, pid: str, client_secret: str, attempt: str, path: str, what: dict,
          act: Callable[[], object], refused: Callable[[SoxaraError], Response | None]) -> Response:
    """Run `act` once per attempt (its key; `what` the form's content), then show the
    payment. A SoxaraError rolls back and gives the attempt's key back (nothing moved):
    `refused` answers it, or None to raise it."""
    store = rt.idempotency
    fp = keyed_hash(rt.secret_key, "idempotency", fingerprint("POST", path, what))
    claim = store.claim(uow, f"pay:{pid}", attempt, fp)
    if claim.outcome == "in_progress":
        uow.rollback()  # hold no connection's transaction open while waiting
        _wait_for_first(store, pid, attempt, fp)
    if claim.outcome != "run":
        # A double tap (or a reload of the POST): the first one's outcome is the payment
        # as it is now, which the page shows.
        return _see(pid, client_secret)
    try:
        act()
        # None, or the outcome of a copy of this attempt that committed first: either way
        # the answer is the page of the payment as it is now.
        store.commit(uow, claim, 303, b"")
        return _see(pid, client_secret)
    except SoxaraError as e:
        uow.rollback()
        store.release(claim)
        answer = refused(e)
        if answer is None:
            raise
        return answer
    except BaseException:
        uow.rollback()
        store.release(claim)
        raise


def _wait_for_first(store, payment_id: str, attempt: str, fp: str) -> None:
    """A second tap while the first is still running: wait (briefly) for its outcome, so
    the page then shows what the first did rather than the form again."""
    deadline = time.monotonic() + IN_PROGRESS_WAIT
    while time.monotonic() < deadline:
        time.sleep(0.1)
        stored = store.recall(f"pay:{payment_id}", attempt, fp)
        if stored is not None and stored.outcome != "in_progress":
            return


def _refused(uow, rt, payment_id: str, client_secret: str, method: payments.PaymentMethod,
             e: SoxaraError) -> Response:
    p = payments.get_with_secret(uow, rt, payment_id, client_secret)
    typed = _shown_phone(method.phone) or None
    if isinstance(e, InvalidState):
        return _see(payment_id, client_secret)  # it moved on meanwhile: the page says how
    if isinstance(e, InsufficientFunds):
        return _show(uow, rt, p, client_secret, status=422, typed_phone=typed,
                     error=forms.FormError(method.type, words.WALLET_SHORT))
    if isinstance(e, InvalidInput):
        return _show(uow, rt, p, client_secret, status=422, typed_phone=typed,
                     error=forms.FormError(method.type, e.message))
    if isinstance(e, Unavailable):
        return _show(uow, rt, p, client_secret, status=503, typed_phone=typed, error=forms.FormError(
            method.type, words.UNAVAILABLE.format(method=words.METHOD_NAMES[method.type])))
    raise e


@pay.errorhandler(Exception)
def _trouble(e: Exception):
    """The page's own answer when something fails: HTML, not the API's JSON."""
    if database_unavailable(e) is not None:
        log.warning("pay page answered 503, the database is unavailable: %s", type(e).__name__)
        resp = _page(503, title=words.FAILED_TITLE, state="failed", lines=[words.BUSY])
        resp.headers["Retry-After"] = "5"
        return resp
    if isinstance(e, HTTPException):  # a form too large or unreadable, a method not allowed
        return _page(e.code or 400, title=words.FAILED_TITLE, state="failed", lines=[words.BAD_REQUEST])
    log.exception("pay page failed")
    return _page(500, title=words.FAILED_TITLE, state="failed", lines=[words.BUSY])
