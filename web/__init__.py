"""What the two ways in over HTTP share: the `/v1` API (api/) and the WhatsApp webhook with
its sandbox pages (bot/). The contract's envelope and the Retry-After of a 503
(`envelope`), and JSON bodies read with bounds (`jsonbody`).

It imports core and flask, never api/, bot/ or workers/, so api/ and bot/ can both use it
without importing each other (docs/architecture.md).
"""
