"""Request payloads declared once (surveys.payloads): the schemas the OpenAPI
document serves are the ones requests are checked against, and a failed check
reads as plain words keyed by field path, never as the validator's own text."""

from datetime import date

import pytest

from surveys import payloads
from surveys.api.openapi import build_openapi_document


@pytest.fixture(autouse=True, scope="module")
def declared():
    """Payloads for these tests only, gone from the registry afterwards."""
    payloads.declare("TestItem", {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "maxLength": 5, "pattern": payloads.ONE_LINE, "title": payloads.ONE_LINE_TITLE},
                       "size": {"type": "integer", "minimum": 1, "maximum": 9},
                       "kind": {"type": ["string", "null"], "enum": ["a", "b", None]},
                       "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}}},
    })
    payloads.declare("TestItems", {"type": "array", "items": payloads.ref("TestItem")})
    payloads.declare("TestSentences", {"type": "object", "properties": {"size": {"type": "integer"}}}, sentences=True)
    yield
    for name in ("TestItem", "TestItems", "TestSentences"):
        del payloads.SCHEMAS[name]
    payloads._validators.clear()


def test_each_fault_is_keyed_by_its_field_path_in_plain_words():
    errors = payloads.shape_errors("TestItems", [
        {"name": "ok"},
        {"size": 10, "kind": "c", "tags": ["x", 1, "z"], "colour": "red"},
        {"name": "line\nbreak"},
        "not an object",
    ])
    assert errors == {
        "[1].name": "is required",
        "[1].size": "must be from 1 to 9",
        "[1].kind": "must be one of: a, b",
        "[1].tags": "at most 2 items",
        "[1].tags[1]": "must be text",
        "[1].colour": "unknown field (accepted: kind, name, size, tags)",
        "[2].name": "at most 5 characters; must be one line of text, without a line break or another control character",
        "[3]": "must be an object",
    }
    assert payloads.shape_errors("TestItems", [{"name": "fine", "kind": None}]) == {}


def test_depth_root_skip_and_sentences():
    assert payloads.shape_errors("TestItems", [{"name": "x", "tags": [1]}], depth=2) == {"[0].tags": "must be text"}
    assert payloads.shape_errors("TestItem", [], root="item") == {"item": "must be an object"}
    assert payloads.shape_errors("TestItem", {"tags": [1]}, skip="tags") == {"name": "is required"}
    assert payloads.shape_errors("TestSentences", {"size": "9"}) == {"size": "Must be a whole number."}


def test_a_value_json_cannot_hold_is_a_fault_not_a_crash():
    assert list(payloads.shape_errors("TestItem", {"name": date(2026, 1, 1)})) == ["body"]


def test_the_openapi_document_serves_every_declared_payload():
    served = build_openapi_document()["components"]["schemas"]
    assert all(served[name] is schema for name, schema in payloads.SCHEMAS.items())
