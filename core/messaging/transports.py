"""What hands a WhatsApp message to the world: the transport interface, its one error,
and the sandbox's transport. The real one (Twilio) lives outside core
(workers/twilio_transport.py), since core never imports twilio.
"""

from __future__ import annotations

from typing import Protocol

from core.ids import new_id


class TransportError(Exception):
    """The provider did not take the message. `permanent`: retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class MessageTransport(Protocol):
    """What sends a message. Real ones live outside core (workers/twilio_transport.py)."""

    # True when the transport's "recipient" is our own outbox (the sandbox), which keeps
    # the sealed text for outbox.REVEAL_WINDOW so a developer can read what a phone would show.
    keeps_delivered_copy: bool

    def send(self, to_phone: str, body: str) -> str:
        """Hand the message over; return the provider's id. Raises TransportError."""
        ...


class SandboxTransport:
    """Sends nothing: the stored row is the message, marked sent with a fake provider id."""

    keeps_delivered_copy = True

    def send(self, to_phone: str, body: str) -> str:
        return new_id("SMsandbox")
