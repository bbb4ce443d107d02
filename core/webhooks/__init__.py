"""Webhooks: telling merchants' endpoints about events (CONTRACT.md section 3)."""
