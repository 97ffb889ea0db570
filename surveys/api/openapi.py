"""The OpenAPI document at /api/v1/openapi.json, assembled from the paths each
resource module declares in its OPENAPI_PATHS, so a route and its description
live side by side."""

from flask import jsonify

from surveys.api import api_bp


def build_openapi_document():
    from surveys.api import alerts, cadences, people, question_sets, rounds

    paths = {}
    schemas = {"Problem": PROBLEM_SCHEMA}
    for module in (people, question_sets, cadences, rounds, alerts):
        paths.update(module.OPENAPI_PATHS)
        schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Canary API",
            "version": "1.0.0",
            "description": "Recurring standardized questionnaires from sales to product. "
            "Authenticate with 'Authorization: Bearer <token>' (flask --app wsgi users token). "
            "Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas,
        },
        "paths": paths,
    }


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


@api_bp.get("/openapi.json")
def openapi_document():
    return jsonify(build_openapi_document())
