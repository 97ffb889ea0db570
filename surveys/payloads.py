"""Request payloads, each declared once as a JSON Schema.

The service that accepts a payload declares its shape here (`declare`); the
OpenAPI document serves these declarations as its components/schemas, and
`shape_errors` checks a payload against the same declaration with
jsonschema-rs (Draft 2020-12, the dialect of OpenAPI 3.1). The API, the HTML
forms, the CLI and imports all pass through it, so a shape is written in one
place; services keep only the checks a schema cannot express (a time zone
that exists, a rule that parses, rows that exist, rules across fields).

Errors are plain words keyed by field path, as the API has always answered
them: "name", "audience.teams", "questions[0].type", "[3].timezone".
"""

from __future__ import annotations

import jsonschema_rs

SCHEMAS: dict[str, dict] = {}

# A `pattern` for one line of text: no line break nor other control character.
ONE_LINE = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
ONE_LINE_TITLE = "one line of text, without a line break or another control character"
_validators: dict[str, jsonschema_rs.Draft202012Validator] = {}

# Email addresses are checked by email-validator in the services (its rules,
# its messages); the schema's `format: email` documents them.
_FORMATS = {"email": lambda value: True}
_FORMAT_WORDS = {
    "date": "a date as YYYY-MM-DD",
    "date-time": "a date and time in ISO 8601",
    "uri": "an absolute URL",
}
_TYPE_WORDS = {
    "string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
    "array": "a list", "object": "an object", "null": "null",
}


def declare(name: str, schema: dict) -> dict:
    """Register `schema` as the payload `name` (#/components/schemas/<name>)."""
    SCHEMAS[name] = schema
    _validators.clear()
    return schema


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _validator(name: str):
    if name not in _validators:
        root = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": SCHEMAS}}
        _validators[name] = jsonschema_rs.Draft202012Validator(root, validate_formats=True, formats=_FORMATS)
    return _validators[name]


def field_path(parts, root: str = "") -> str:
    """["questions", 0, "type"] -> "questions[0].type"; [3, "timezone"] -> "[3].timezone"."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or root


def shape_errors(name: str, data, root: str = "body", depth: int | None = None) -> dict[str, str]:
    """What in `data` does not fit the payload `name`: {field path: message};
    empty when it fits. `root` keys a problem with the whole payload; `depth`
    keys deeper problems by their first `depth` path parts ("[2].roles")."""
    errors: dict[str, str] = {}
    for error in _validator(name).iter_errors(data):
        path = list(error.instance_path)
        schema = _subschema(error.schema_path)
        for extra, message in _messages(error.kind, schema):
            key = field_path((path + extra)[:depth], root)
            errors[key] = f"{errors[key]}; {message}" if key in errors and message not in errors[key] else message
    return errors


def _subschema(schema_path) -> dict:
    """The schema object holding the keyword that failed."""
    node = {"components": {"schemas": SCHEMAS}}
    for part in list(schema_path)[:-1]:
        node = node[part]
    return node if isinstance(node, dict) else {}


def _messages(kind, schema: dict):
    """(extra path parts, message) pairs for one jsonschema-rs error."""
    name = type(kind).__name__
    details = kind.as_dict()
    if name == "Required":
        return [([details["property"]], "is required")]
    if name in ("AdditionalProperties", "UnevaluatedProperties"):
        accepted = ", ".join(sorted(schema.get("properties", {})))
        return [([extra], f"unknown field (accepted: {accepted})") for extra in details["unexpected"]]
    if name == "FalseSchema":
        return [([], "unknown field")]
    return [([], _message(name, details, schema))]


def _message(name: str, details: dict, schema: dict) -> str:
    limit = details.get("limit")
    if name == "Type":
        return "must be " + " or ".join(_TYPE_WORDS.get(t, t) for t in details["types"])
    if name == "Enum":
        return "must be one of: " + ", ".join(str(option) for option in details["options"])
    if name == "Constant":
        return f"must be {details.get('expected_value')}"
    if name == "MaxLength":
        return f"at most {limit} characters"
    if name == "MinLength":
        return "must not be empty" if limit == 1 else f"at least {limit} characters"
    if name in ("Minimum", "Maximum") and "minimum" in schema and "maximum" in schema:
        return f"must be from {schema['minimum']} to {schema['maximum']}"
    if name == "Minimum":
        return f"must be at least {limit}"
    if name == "Maximum":
        return f"must be at most {limit}"
    if name == "MaxItems":
        return f"at most {limit} items"
    if name == "MinItems":
        return "must not be empty" if limit == 1 else f"at least {limit} items"
    if name == "UniqueItems":
        return "must not repeat a value"
    if name == "Format":
        return "must be " + _FORMAT_WORDS.get(details.get("format"), f"in the {details.get('format')} format")
    if name == "Pattern":
        return f"must be {schema['title']}" if "title" in schema else "is not in the expected format"
    return "is not valid here"
