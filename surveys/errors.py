"""Error pages for people and problem details for programs.

Nothing here ever shows a traceback: an unexpected error is logged (with any
credential in the URL scrubbed, see surveys.security) and answered with a
plain page, or a problem document under /api/. Only a test run that asks for
PROPAGATE_EXCEPTIONS sees the exception itself.
"""

from flask import render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from surveys.problems import ApiProblem, problem_response
from surveys.security import scrub_secrets


def wants_problem_json() -> bool:
    return request.path.startswith("/api/")


def _megabytes(size) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size else "the limit"


def register(app):
    @app.errorhandler(HTTPException)
    def http_error(error):
        if isinstance(error, ApiProblem):
            return error.get_response()
        if isinstance(error, RequestEntityTooLarge):
            return too_large(error)
        if wants_problem_json():
            return problem_response(error.code, error.name, error.description)
        return render_template("errors/error.html", error=error), error.code

    def too_large(error):
        limit = _megabytes(app.config.get("MAX_CONTENT_LENGTH"))
        if wants_problem_json():
            return problem_response(413, "Content too large", f"The request body is larger than {limit}; nothing was stored.")
        return (
            render_template(
                "errors/error.html",
                error=error,
                message=f"What you sent is larger than {limit}, so nothing was saved. Send a smaller file or shorter answers.",
            ),
            413,
        )

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        if wants_problem_json():
            return problem_response(400, "Bad request", error.description)
        return (
            render_template(
                "errors/error.html",
                error=error,
                message="This form has expired or was sent from another page. Go back, reload it and send it again.",
            ),
            400,
        )

    @app.errorhandler(Exception)
    def unexpected_error(error):
        if isinstance(error, HTTPException):
            return http_error(error)
        app.logger.exception("Unhandled error on %s %s", request.method, scrub_secrets(request.path))
        if app.config.get("TESTING") and app.config.get("PROPAGATE_EXCEPTIONS"):
            raise error
        if wants_problem_json():
            return problem_response(500, "Internal server error", "Something went wrong on our side; nothing was stored.")
        return render_template("errors/error.html", error=None, message="Something went wrong on our side. Please try again in a moment."), 500
