"""A template's value as Go's ``encoding/json`` encodes it, as Docker's ``{{json .}}`` prints it (pure).

Owns the rules only: compact JSON (no space after ``:`` or ``,``), a map's keys sorted and a struct's
fields in order (an ``omitempty`` one left out when empty), Go's number and string forms (``1`` for 1.0,
``1e-7``, ``\\u2028``; no HTML escaping: Docker turns it off). A value with a ``json_value()`` method
encodes as what that returns (a time as RFC 3339 text). Never evaluates a template (gotemplate_exec.py)
nor prints ``%v`` (gotemplate_values.py).
"""

from __future__ import annotations

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
        import decimal  # only here: an idle daemon never loads it (tests/unit/test_daemon_imports.py)

        text = format(decimal.Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, _, exponent = repr(value).partition("e")
    mantissa = mantissa.removesuffix(".0")
    sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
    if sign == "+" and len(digits) < 2:
        digits = digits.rjust(2, "0")  # Go keeps e+21's two digits, drops e-07's zero
    return f"{mantissa}e{sign}{digits}"


#: what ``json.Marshal`` writes for ``<``, ``>`` and ``&`` (its HTML escaping, on but in Docker's encoder)
_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _json_string(text: str, escape_html: bool = False) -> str:
    """encoding/json's string: a byte that is no UTF-8 as U+FFFD, ``\\u2028``/``\\u2029`` escaped, with
    ``escape_html`` ``<``, ``>``, ``&`` too (``\\u003c``), the other characters as they are."""
    clean = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    out = json.dumps(clean, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return "".join(_HTML.get(c, c) for c in out) if escape_html else out


def _empty(value: Any) -> bool:
    """encoding/json's ``omitempty`` test: false, 0, nil, an empty string, slice or map (a struct never)."""
    if value is None or value is MISSING:
        return True
    if is_struct(value):
        return False
    return isinstance(value, bool | int | float | str | list | tuple | Mapping) and not value


def go_json(value: Any, escape_html: bool = False) -> str:
    """``value`` as Docker's ``{{json .}}`` prints it (Go's ``json.Encoder``, HTML escaping off unless
    ``escape_html``, as ``json.Marshal``): ``null`` for nil and an absent value; ValueError for NaN or an
    infinity (Go's encoder refuses them). A value with a ``json_text()`` method is the JSON it returns (a
    Go ``MarshalJSON``: docker/cli's list rows marshal themselves with ``json.Marshal``, HTML escaped)."""
    if value is None or value is MISSING:
        return "null"
    marshal = getattr(value, "json_text", None)
    if callable(marshal):
        return str(marshal())
    method = getattr(value, "json_value", None)
    if callable(method):
        return go_json(method(), escape_html)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"json: unsupported value: {go_text(value)}")
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value, escape_html)
    if is_struct(value):
        omit = getattr(value, "omitempty", ())  # Go's ``json:",omitempty"`` fields, left out when empty
        fields = [(k, v) for k, v in struct_fields(value) if k not in omit or not _empty(v)]
        return (
            "{"
            + ",".join(f"{_json_string(k, escape_html)}:{go_json(v, escape_html)}" for k, v in fields)
            + "}"
        )
    if isinstance(value, Mapping):
        keys = sorted(value, key=str)
        items = (f"{_json_string(str(k), escape_html)}:{go_json(value[k], escape_html)}" for k in keys)
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(go_json(v, escape_html) for v in value) + "]"
    return _json_string(str(value), escape_html)
