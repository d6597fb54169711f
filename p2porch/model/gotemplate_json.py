"""A template's value as Go's ``encoding/json`` encodes it, as Docker's ``{{json .}}`` prints it (pure).

Owns the rules only: compact JSON (no space after ``:`` or ``,``), a map's keys sorted and a struct's
fields in order, Go's number and string forms (``1`` for 1.0, ``1e-7``, ``\\u2028``; no HTML escaping:
Docker turns it off). A value with a ``json_value()`` method encodes as what that returns (a time as
RFC 3339 text). Never evaluates a template (gotemplate_exec.py) nor prints ``%v`` (gotemplate_values.py).
"""

from __future__ import annotations

import decimal
import json
import math
from collections.abc import Mapping
from typing import Any

from .gotemplate_values import MISSING, go_text, is_struct, struct_fields


def _json_float(value: float) -> str:
    """encoding/json's float64: positional digits, an exponent below 1e-6 and from 1e21 (``1e-7``)."""
    if value == 0:
        return "-0" if math.copysign(1, value) < 0 else "0"
    if 1e-6 <= abs(value) < 1e21:
        text = format(decimal.Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, _, exponent = repr(value).partition("e")
    mantissa = mantissa.removesuffix(".0")
    sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
    if sign == "+" and len(digits) < 2:
        digits = digits.rjust(2, "0")  # Go keeps e+21's two digits, drops e-07's zero
    return f"{mantissa}e{sign}{digits}"


def _json_string(text: str) -> str:
    """encoding/json's string with HTML escaping off (Docker's): a byte that is no UTF-8 as U+FFFD,
    ``\\u2028``/``\\u2029`` escaped, the other characters as they are."""
    clean = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return json.dumps(clean, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def go_json(value: Any) -> str:
    """``value`` as Docker's ``{{json .}}`` prints it (Go's ``json.Encoder``, HTML escaping off): ``null``
    for nil and an absent value; ValueError for NaN or an infinity (Go's encoder refuses them)."""
    if value is None or value is MISSING:
        return "null"
    method = getattr(value, "json_value", None)
    if callable(method):
        return go_json(method())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"json: unsupported value: {go_text(value)}")
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if is_struct(value):
        return "{" + ",".join(f"{_json_string(k)}:{go_json(v)}" for k, v in struct_fields(value)) + "}"
    if isinstance(value, Mapping):
        keys = sorted(value, key=str)
        return "{" + ",".join(f"{_json_string(str(k))}:{go_json(value[k])}" for k in keys) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    return _json_string(str(value))
