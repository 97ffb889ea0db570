"""The JSON API against its own description, /api/v1/openapi.json.

schemathesis generates requests for every operation the document describes
(valid and invalid bodies, parameters and queries) and checks each answer:
no server error, a status code the document lists, the content type it
declares, and a body that matches the declared schema. Bounded: a fixed
number of examples per operation, no shrinking, derandomized, so the run is
short and repeatable in CI.
"""

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.builders.loop import set_up_org_and_cadence

EXAMPLES_PER_OPERATION = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def fresh_context_wsgi(app):
    """The app as a WSGI callable that runs each request in its own app
    context, as a real server does (the test holds one open for itself)."""

    def wsgi(environ, start_response):
        with app.app_context():
            return list(app(environ, start_response))

    return wsgi


def test_every_api_operation_answers_as_its_openapi_document_says(app, client, api_token, smtp, redis_conn):
    headers = api_token(roles=("pm", "leader", "admin"))
    # Real objects behind the first ids, so reads and changes reach past 404.
    set_up_org_and_cadence(client, headers)

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fresh_context_wsgi(app))
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def exercise(case):
            response = case.call(headers=headers)
            case.validate_response(response, checks=CHECKS)

        try:
            exercise()
        except Exception as failure:  # noqa: BLE001 - every operation is reported, not only the first
            failures.append(f"{operation.label}:\n{failure}")
    assert operations >= 10, "the OpenAPI document describes too few operations"
    assert not failures, "\n\n".join(failures)
