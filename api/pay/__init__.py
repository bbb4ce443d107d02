"""The hosted pay page: `GET /pay/{id}?client_secret=…`, server-rendered for a cheap
phone's browser (no JavaScript, a little CSS, large tap targets), where a customer pays
a payment with their Soxara wallet, MTN MoMo, Orange Money or (test mode) a card.

`page.py` the views, `forms.py` the form's token and what the customer typed, `words.py`
every sentence, `templates/pay.html` and `pay.css` the page. docs/pay-page.md explains it.
"""

from api.pay.page import pay

__all__ = ["pay"]
