"""Rep links: signed, scoped to one invitation, revocable.

A link carries the invitation id and its nonce, signed with SECRET_KEY. It
needs no expiry of its own: the round's status decides whether it accepts
answers. Replacing an invitation's nonce revokes every link sent for it.
"""

import hmac
from urllib.parse import urlencode

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from sqlalchemy.orm import joinedload

from cadence.models import Invitation, Round
from surveys.models import QuestionSetVersion
from surveys.extensions import db

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


def invitation_url(invitation: Invitation, **query) -> str:
    return url_for_token(invitation_token(invitation), **query)


def invitation_for_token(token: str) -> Invitation | None:
    """The invitation a link belongs to, or None for anything forged, truncated
    or revoked: callers answer all of those with the same 404."""
    try:
        invitation_id, nonce = _serializer().loads(token)
        invitation_id = int(invitation_id)
        nonce = str(nonce)
    except (BadSignature, ValueError, TypeError):
        return None
    # The form needs the round, its frozen version and the questions: one
    # round trip for the invitation and round, one for the questions.
    invitation = db.session.get(
        Invitation,
        invitation_id,
        options=[joinedload(Invitation.round).joinedload(Round.version).selectinload(QuestionSetVersion.questions)],
    )
    if invitation is None or not hmac.compare_digest(invitation.nonce.encode(), nonce.encode()):
        return None
    return invitation
