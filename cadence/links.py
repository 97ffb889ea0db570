"""Rep links: signed, scoped to one invitation, revocable.

A link carries the invitation id and its nonce, signed with SECRET_KEY. It
needs no expiry of its own: the round's status decides whether it accepts
answers. Replacing an invitation's nonce revokes every link sent for it.
"""

import hmac

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from cadence.models import Invitation
from surveys.extensions import db

SALT = "canary.rep-link.v1"


def _serializer():
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def invitation_token(invitation: Invitation) -> str:
    return _serializer().dumps([invitation.id, invitation.nonce])


def invitation_url(invitation: Invitation, **query) -> str:
    url = f"{current_app.config['BASE_URL']}/r/{invitation_token(invitation)}"
    if query:
        from urllib.parse import urlencode

        url += "?" + urlencode(query)
    return url


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation a link belongs to, or None for anything forged, truncated
    or revoked: callers answer all of those with the same 404."""
    try:
        invitation_id, nonce = _serializer().loads(token)
        invitation_id = int(invitation_id)
        nonce = str(nonce)
    except (BadSignature, ValueError, TypeError):
        return None
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or not hmac.compare_digest(invitation.nonce.encode(), nonce.encode()):
        return None
    return invitation
