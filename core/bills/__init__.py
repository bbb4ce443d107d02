"""Bill payments: a person or a merchant pays an LEC or LWSC bill from a wallet.

`bill_payments` holds the payment (its row, how it starts, how the API and the chat read
it); `settlement` is what the worker does with it afterwards: pay the biller over TIMM
(core/billers), ask again after a time-out, and settle the money either way. docs/bills.md
walks through a payment's life.
"""
