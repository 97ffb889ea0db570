"""Error pages for people and problem details for programs."""

from flask import render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from surveys.problems import ApiProblem, problem_response


def wants_problem_json() -> bool:
    return request.path.startswith("/api/")


def register(app):
    @app.errorhandler(HTTPException)
    def http_error(error):
        if isinstance(error, ApiProblem):
            return error.get_response()
        if wants_problem_json():
            return problem_response(error.code, error.name, error.description)
        return render_template("errors/error.html", error=error), error.code

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
        app.logger.exception("Unhandled error on %s", request.path.split("/r/")[0] if "/r/" in request.path else request.path)
        if app.config.get("TESTING") and app.config.get("PROPAGATE_EXCEPTIONS"):
            raise error
        if wants_problem_json():
            return problem_response(500, "Internal server error", "Something went wrong on our side; nothing was stored.")
        return render_template("errors/error.html", error=None, message="Something went wrong on our side. Please try again in a moment."), 500
