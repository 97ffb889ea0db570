"""What every resource module of the API needs: the blueprint, Bearer-token
authentication with role checks, the JSON body, 404s, and the problem-details
entries of the OpenAPI document."""

from functools import wraps

from flask import Blueprint, g, request

from surveys import limits, payloads
from surveys.auth.service import person_for_api_token
from surveys.extensions import db
from surveys.problems import ApiProblem, validation_problem

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


def json_body(expected=dict, schema: str | None = None):
    """The request's JSON body, which must be an object (or a list) and, given
    `schema`, fit that payload declaration (422 with an error per field)."""
    data = None
    if request.is_json:
        try:
            data = limits.loads(request.get_data(cache=True))
        except limits.HostileInput as refused:
            raise ApiProblem(400, "Bad request", str(refused)) from None
        except ValueError:
            data = None
    if not isinstance(data, expected):
        kind = "an object" if expected is dict else "a list"
        raise ApiProblem(400, "Bad request", f"The body must be JSON: {kind}.")
    if schema and (errors := payloads.shape_errors(schema, data)):
        raise validation_problem(errors)
    return data


def archived_argument() -> bool:
    """`?archived=true` lists archived cadences or sets instead of the others."""
    value = request.args.get("archived", "false")
    if value not in ("true", "false"):
        raise ApiProblem(400, "Bad request", "archived must be true or false", {"archived": "true or false"})
    return value == "true"


ARCHIVED_PARAMETER = {
    "name": "archived", "in": "query", "required": False,
    "schema": {"type": "boolean", "default": False},
    "description": "true: list only the archived ones; by default they are left out.",
}


def get_or_404(model, object_id, what):
    obj = db.session.get(model, object_id)
    if obj is None:
        raise ApiProblem(404, "Not found", f"No {what} with id {object_id}.")
    return obj


PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": True},
    },
}


def problem_responses(*codes):
    """OpenAPI response entries for the given error status codes."""
    descriptions = {
        400: "Bad request", 401: "Missing or unknown token", 403: "Role not allowed",
        404: "Not found", 409: "Conflict", 422: "Validation failed; nothing stored",
    }
    return {
        str(code): {
            "description": descriptions.get(code, "Error"),
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for code in codes
    }
