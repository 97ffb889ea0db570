"""Request payloads, each declared once as a JSON Schema.

The service that accepts a payload declares its shape here (`declare`); the
OpenAPI document serves these declarations as its components/schemas, and
`shape_errors` checks a payload against the same declaration with
jsonschema-rs (Draft 2020-12, the dialect of OpenAPI 3.1). The API, and the
staff pages and imports that share its services, pass through it, so a shape
is written in one place; services keep only the checks a schema cannot
express (a time zone that exists, a rule that parses, rows that exist, rules
across fields).

Errors are plain words keyed by field path, as the API has always answered
them: "name", "audience.teams", "questions[0].type", "[3].timezone".
"""

from __future__ import annotations

import re

import jsonschema_rs

SCHEMAS: dict[str, dict] = {}
_SENTENCES: set[str] = set()
_validators: dict[str, jsonschema_rs.Draft202012Validator] = {}

# `pattern`s for text without control characters: one line (a line break in a
# name breaks every email subject it reaches), or several lines and tabs.
ONE_LINE = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
ONE_LINE_TITLE = "one line of text, without a line break or another control character"
MULTILINE = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
MULTILINE_TITLE = "text without control characters (line breaks and tabs are fine)"

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


def declare(name: str, schema: dict, *, sentences: bool = False) -> dict:
    """Register `schema` as the payload `name` (#/components/schemas/<name>).
    `sentences`: its messages read "Must be text." rather than "must be text",
    as the question-set errors always have."""
    SCHEMAS[name] = schema
    if sentences:
        _SENTENCES.add(name)
    _validators.clear()
    return schema


def fits(errors: dict, field: str) -> bool:
    """No error in `errors` concerns `field` or anything inside it."""
    return not any(key == field or key.startswith((f"{field}.", f"{field}[")) for key in errors)


def stripped(value):
    """`value` with every text in it stripped of surrounding white space."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        return {key: stripped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [stripped(item) for item in value]
    return value


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


def shape_errors(name: str, data, root: str = "body", depth: int | None = None, skip: str | None = None) -> dict[str, str]:
    """What in `data` does not fit the payload `name`: {field path: message};
    empty when it fits. `root` keys a problem with the whole payload; `depth`
    keys deeper problems by their first `depth` path parts ("[2].roles");
    problems in the field `skip` are left out (the caller checks it)."""
    errors: dict[str, str] = {}
    try:
        found = list(_validator(name).iter_errors(data))
    except ValueError:  # a value JSON cannot hold (bytes, a date object...)
        found = []
        errors[root] = "must be JSON data: text, numbers, true or false, null, lists and objects"
    for error in found:
        path = list(error.instance_path)
        schema = _subschema(error.schema_path)
        for extra, message in _messages(error.kind, schema, brief=name in _SENTENCES):
            key = field_path((path + extra)[:depth], root)
            errors[key] = f"{errors[key]}; {message}" if key in errors and message not in errors[key] else message
    if skip:
        errors = {key: message for key, message in errors.items() if fits({key: message}, skip)}
    if name in _SENTENCES:
        errors = {key: f"{message[:1].upper()}{message[1:]}." for key, message in errors.items()}
    return errors


def in_path_order(errors: dict[str, str]) -> dict[str, str]:
    """`errors` sorted by field path, "options[2]" before "options[10]"."""
    def order(item):
        return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"[\[\].]+", item[0])]

    return dict(sorted(errors.items(), key=order))


def _subschema(schema_path) -> dict:
    """The schema object holding the keyword that failed."""
    node = {"components": {"schemas": SCHEMAS}}
    for part in list(schema_path)[:-1]:
        node = node[part]
    return node if isinstance(node, dict) else {}


def _messages(kind, schema: dict, brief: bool):
    """(extra path parts, message) pairs for one jsonschema-rs error."""
    name = type(kind).__name__
    details = kind.as_dict()
    if name == "Required":
        return [([details["property"]], "is required")]
    if name == "AdditionalProperties":
        accepted = "" if brief else f" (accepted: {', '.join(sorted(schema.get('properties', {})))})"
        return [([extra], f"unknown field{accepted}") for extra in details["unexpected"]]
    return [([], _message(name, details, schema))]


def _message(name: str, details: dict, schema: dict) -> str:
    limit = details.get("limit")
    if name == "Type":
        return "must be " + " or ".join(_TYPE_WORDS.get(t, t) for t in details["types"])
    if name == "Enum":
        return "must be one of: " + ", ".join(str(option) for option in details["options"] if option is not None)
    if name == "MaxLength":
        return f"at most {limit} characters"
    if name == "MinLength":
        return "required" if limit == 1 else f"at least {limit} characters"  # text is stripped: blank is missing
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
