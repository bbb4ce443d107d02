"""The WhatsApp bot: the Twilio webhook, the dialog state machine and the sandbox chat page."""
