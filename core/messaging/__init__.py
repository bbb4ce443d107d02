"""WhatsApp both ways: the outbox (messages stored with the change that caused them,
delivered after commit) and the conversations (each phone's dialog state, inbound
messages, the transcript)."""
