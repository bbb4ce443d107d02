"""User sessions and access tokens. (Built with the money core: see issue 3.)"""

from __future__ import annotations


def authenticate_access_token(uow, settings, token: str):
    """(user_id, session_id) for a valid, unrevoked access token, else None."""
    return None
