"""Rep links: signed, scoped to one invitation, revocable.

A link carries the invitation id and its nonce, signed with SECRET_KEY. It
needs no expiry of its own: the round's status decides whether it accepts
answers. Replacing an invitation's nonce revokes every link sent for it.
"""

import hmac
from urllib.parse import urlencode

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from cadence.models import Invitation

SALT = "canary.rep-link.v1"


def _serializer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def token_for(invitation_id: int, nonce: str) -> str:
    return _serializer().dumps([invitation_id, nonce])


def invitation_token(invitation: Invitation) -> str:
    return token_for(invitation.id, invitation.nonce)


def url_for_token(token: str, **query) -> str:
    url = f"{current_app.config['BASE_URL']}/r/{token}"
    if query:
        url += "?" + urlencode(query)
    return url


def signed_reference(token: str) -> tuple[int, str] | None:
    """The (invitation id, nonce) a link carries, or None for anything forged
    or truncated: callers answer that, a revoked link and an unknown one with
    the same 404."""
    try:
        invitation_id, nonce = _serializer().loads(token)
        return int(invitation_id), str(nonce)
    except (BadSignature, ValueError, TypeError):
        return None


def link_is_current(invitation: Invitation, nonce: str) -> bool:
    """False once the invitation's nonce was replaced (the link revoked)."""
    return hmac.compare_digest(invitation.nonce.encode(), nonce.encode())
