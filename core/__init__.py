"""Soxara's domain: money, people, merchants and conversations.

Nothing in here knows about HTTP, WhatsApp's wire format or the job queue library;
the web app, the bot and the workers all call the same services. A small kernel of
flat modules (db, errors, ids, crypto, config, runtime, phones, amounts, tracing, jobs,
idempotency, ratelimit, names, models) and feature packages around it (identity,
merchants, wallets, messaging, events, rails): docs/architecture.md.
"""
