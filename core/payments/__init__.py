"""Payments: a merchant asks a customer to pay (PaymentIntent, `payments.py`), the customer
pays from a Soxara wallet (approved with the PIN in WhatsApp), MTN MoMo, Orange Money or a
card, and the merchant can refund it back to the source (`refunds.py`). What each method
costs the merchant is `fees.py`."""
