"""The event outbox: a row per state change, written in the transaction that made it."""
