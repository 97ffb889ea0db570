"""RFC 9457 problem details for the JSON API."""

from flask import jsonify
from werkzeug.exceptions import HTTPException


class ApiProblem(HTTPException):
    """Raise from API code to answer `application/problem+json`."""

    def __init__(self, status: int, title: str, detail: str | None = None, errors: dict | None = None):
        super().__init__(description=detail or title)
        self.code = status
        self.title = title
        self.detail = detail
        self.errors = errors

    def get_response(self, environ=None, scope=None):
        return problem_response(self.code, self.title, self.detail, self.errors)


def problem_response(status: int, title: str, detail: str | None = None, errors: dict | None = None):
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def validation_problem(errors: dict, detail: str = "The request has invalid fields; nothing was stored."):
    return ApiProblem(422, "Validation failed", detail, errors)
