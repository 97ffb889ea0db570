"""The OpenAPI document at /api/v1/openapi.json, assembled from the paths each
resource module declares in its OPENAPI_PATHS, so a route and its description
live side by side, and the request payloads declared in surveys.payloads (the
same schemas the requests are validated against)."""

from flask import jsonify

from surveys.api import alerts, cadences, deals, moments, needs, people, question_sets, rounds
from surveys import payloads
from surveys.api.base import PROBLEM_SCHEMA, api_bp

# Every resource module of the API: importing this module registers their routes.
RESOURCES = (people, question_sets, cadences, rounds, alerts, needs, deals, moments)


def build_openapi_document():
    paths = {}
    schemas = {"Problem": PROBLEM_SCHEMA, **payloads.SCHEMAS}
    for module in RESOURCES:
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




@api_bp.get("/openapi.json")
def openapi_document():
    return jsonify(build_openapi_document())
