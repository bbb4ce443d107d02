"""Soxara's domain: money, people, merchants and conversations.

Nothing in here knows about HTTP, WhatsApp's wire format or the job queue library;
the web app, the bot and the workers all call the same services.
"""
