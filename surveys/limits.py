"""Input limits (issue 13): hostile input gets a clear 4xx quickly, never a
500 or seconds of CPU.

- JSON (API bodies, designer import): nested at most MAX_JSON_DEPTH levels,
  checked by a linear scan before parsing (Python's parser would raise
  RecursionError); integers of at most MAX_INT_DIGITS digits (a 5,000-digit
  number would exceed Python's int conversion limit); no NaN or Infinity.
- Whole numbers in query strings (`?page=`, `?before=`, `?version=`,
  `?count=`): ASCII digits only, a few of them, bounded.
- Ids from forms, query strings and JSON: whole numbers from 1 to the
  largest id a table can hold (a larger one is an error on PostgreSQL, not
  merely unknown).
"""

from __future__ import annotations

import json

MAX_JSON_DEPTH = 32
MAX_INT_DIGITS = 18
# The largest id an integer column holds (32-bit on PostgreSQL): a larger one
# is an error there, not merely unknown. Also above any page worth asking for.
MAX_ID = 2**31 - 1
MAX_QUERY_NUMBER = MAX_ID


class HostileInput(ValueError):
    """Input refused by a limit; the message says which, for the person who sent it."""


def check_json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise HostileInput when arrays/objects nest deeper than `limit`.
    Brackets inside strings do not count."""
    depth = 0
    in_string = False
    escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                raise HostileInput(f"The JSON is nested more than {limit} levels deep.")
        elif char in "]}":
            depth -= 1


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise HostileInput(f"The JSON holds a number with more than {MAX_INT_DIGITS} digits.")
    return int(text)


def _parse_constant(name: str):
    raise HostileInput(f"The JSON holds {name}, which is not a number JSON allows.")


def loads(data: str | bytes):
    """json.loads within the limits above. Raises HostileInput for a limit,
    ValueError (json.JSONDecodeError, UnicodeDecodeError) for malformed input."""
    text = data.decode("utf-8-sig") if isinstance(data, (bytes, bytearray)) else data
    check_json_depth(text)
    return json.loads(text, parse_int=_parse_int, parse_constant=_parse_constant)


def whole_number(raw: str | None, *, minimum: int = 0, maximum: int = MAX_QUERY_NUMBER) -> int | None:
    """`raw` as an int when it is a few ASCII digits within [minimum, maximum], else None."""
    if raw is None or not raw.isascii() or not raw.isdigit() or len(raw) > len(str(maximum)):
        return None
    value = int(raw)
    return value if minimum <= value <= maximum else None


def record_id(value) -> int | None:
    """An id from a form, a query string (text) or JSON (a number), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 1 <= value <= MAX_QUERY_NUMBER else None
    if isinstance(value, str):
        return whole_number(value.strip(), minimum=1)
    return None
