"""JSON API under /api/v1: Bearer tokens, role checks, problem details.

Each resource lives in its own module; they all hang off `api_bp`.
"""

from functools import wraps

from flask import Blueprint, g, request

from surveys.auth import person_for_api_token
from surveys.extensions import db
from surveys.problems import ApiProblem

api_bp = Blueprint("api", __name__, url_prefix="/api/v1")


def api_roles(*roles):
    """Authenticate the Bearer token (401) and require one of `roles` (403)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise ApiProblem(401, "Unauthorized", "Send an API token as 'Authorization: Bearer <token>'.")
            person = person_for_api_token(token.strip())
            if person is None:
                raise ApiProblem(401, "Unauthorized", "The API token is unknown or revoked.")
            db.session.commit()  # records last_used_at
            if not person.has_role(*roles):
                raise ApiProblem(403, "Forbidden", f"This endpoint needs one of the roles: {', '.join(roles)}.")
            g.api_user = person
            return view(*args, **kwargs)

        wrapped.required_roles = roles
        return wrapped

    return decorator


def json_body(expected=dict):
    """The request's JSON body, which must be an object (or a list)."""
    data = request.get_json(silent=True)
    if not isinstance(data, expected):
        kind = "an object" if expected is dict else "a list"
        raise ApiProblem(400, "Bad request", f"The body must be JSON: {kind}.")
    return data


def get_or_404(model, object_id, what):
    obj = db.session.get(model, object_id)
    if obj is None:
        raise ApiProblem(404, "Not found", f"No {what} with id {object_id}.")
    return obj


# Resource modules register their routes on api_bp when imported.
from surveys.api import cadences, openapi, people, question_sets, rounds  # noqa: E402, F401
from surveys.api import alerts  # noqa: E402, F401
