"""Go's values as text/template sees them (pure): printing (``%v``), truth, type names, string constants,
and ``fmt.Sprintf``'s verbs.

Owns how a Python value stands for a Go one: ``str`` a string, ``bool``, ``int``, ``float`` (float64),
``list``/``tuple`` a slice, a ``Mapping`` a map (printed in key order), a dataclass a struct (its fields by
name), ``None`` nil and :data:`MISSING` Go's invalid value (a map's absent key: ``<no value>``). A value
with a ``go_text()`` method prints as it says. Never evaluates a template (gotemplate_exec.py does).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any


class _Missing:
    """Go's invalid ``reflect.Value``: what a map gives for an absent key (prints ``<no value>``)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class NilPointer:
    """A typed Go nil pointer (a never-updated service's ``*swarm.UpdateStatus``): printed ``<nil>``,
    false, JSON ``null``; a field of it is Go's ``nil pointer evaluating *swarm.UpdateStatus.State``."""

    def __init__(self, go_type: str) -> None:
        self.go_type = go_type

    def go_text(self) -> str:
        return "<nil>"

    def json_value(self) -> None:
        return None

    def field_error(self, name: str) -> FuncError:
        return FuncError(f"nil pointer evaluating {self.go_type}.{name}")


class Struct(dict[str, Any]):
    """A Go struct: its fields by name in order (an absent one is an error, not ``<no value>``), printed
    ``{v1 v2}``; ``go_type`` names it in errors (``template.Context``)."""

    go_type = "struct"

    def __init__(self, go_type: str = "", /, **fields: Any) -> None:
        super().__init__(**fields)
        if go_type:
            self.go_type = go_type

    def go_text(self) -> str:
        return "{" + " ".join(go_text(v) for v in self.values()) + "}"


class GoList(list[Any]):
    """A typed Go slice (``%T``: ``[]string``, ``[]swarm.PortConfig``), printed ``[a b]``."""

    def __init__(self, go_type: str, items: Iterable[Any] = ()) -> None:
        super().__init__(items)
        self.go_type = go_type


class GoMap(dict[str, Any]):
    """A typed Go map (``%T``: ``map[string]string``), printed ``map[k:v]`` in key order."""

    def __init__(self, go_type: str, items: Any = ()) -> None:
        super().__init__(items)
        self.go_type = go_type


class FuncError(ValueError):
    """A function's failure: the template's execution error says ``error calling NAME: <this>``."""


@dataclasses.dataclass(frozen=True, slots=True)
class Method:
    """A Go method a value offers its templates (docker/cli's ``{{.Label "com.x"}}`` on a list's row),
    bound to that value: ``.Name arg...`` calls it with its arguments, ``.Name`` alone with none, as Go's
    text/template calls a method (a wrong count or type is an error); ``params`` are its parameters' Go
    types (``string``). A value lists its methods in a ``go_methods`` mapping (:func:`method_of`)."""

    name: str
    params: tuple[str, ...]
    call: Callable[..., Any]

    def invoke(self, args: Sequence[Any]) -> Any:
        """The method's result for ``args``; FuncError as Go's (``wrong number of args for Label: want
        1 got 0``, ``wrong type for value; expected string; got int``)."""
        if len(args) != len(self.params):
            raise FuncError(f"wrong number of args for {self.name}: want {len(self.params)} got {len(args)}")
        for param, arg in zip(self.params, args, strict=True):
            if param == "string" and not isinstance(arg, str):
                raise FuncError(f"wrong type for value; expected string; got {go_type(arg)}")
        return self.call(*args)


def method_of(receiver: Any, name: str) -> Method | None:
    """``receiver``'s method ``name`` (from its ``go_methods``), or None."""
    methods = getattr(receiver, "go_methods", None)
    return methods.get(name) if isinstance(methods, Mapping) else None


def is_struct(value: Any) -> bool:
    return isinstance(value, Struct) or (dataclasses.is_dataclass(value) and not isinstance(value, type))


def go_type(value: Any) -> str:
    """The Go type name an error message gives ``value`` (``string``, ``map[string]interface {}``)."""
    if value is None or value is MISSING:
        return "<nil>"
    named = getattr(value, "go_type", None)
    if isinstance(named, str):
        return named
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map[string]interface {}"
    if isinstance(value, list | tuple):
        return "[]interface {}"
    return type(value).__name__


def truth(value: Any) -> bool:
    """Go's truth: false, 0, nil, an empty string, slice or map are false; a struct is true."""
    if value is None or value is MISSING or isinstance(value, NilPointer):
        return False
    if is_struct(value):
        return True
    if isinstance(value, bool | int | float | str | Mapping | list | tuple):
        return bool(value)
    return True


def go_float(value: float, verb: str = "g", prec: int = -1) -> str:
    """``value`` as Go's ``%v`` prints a float64 (the shortest digits; an exponent from 1e6 up and below
    1e-4: ``1e+06``), or with ``verb`` f/e/g and ``prec`` digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if verb in "fF":
        return f"{value:.{6 if prec < 0 else prec}f}"
    if verb in "eE":
        text = f"{value:.{6 if prec < 0 else prec}e}"
        return text.upper() if verb == "E" else text
    if prec >= 0:
        return _exp_fix(f"{value:.{max(prec, 1)}g}")
    mantissa, _, exponent = repr(abs(value)).partition("e")  # the shortest digits that read back
    whole, _, fraction = mantissa.partition(".")
    text = (whole + fraction).lstrip("0")
    point = len(whole) + int(exponent or 0) - (len(whole + fraction) - len(text))  # digits before "."
    text = text.rstrip("0")
    minus = "-" if math.copysign(1, value) < 0 else ""
    if not text:
        return minus + "0"
    if point - 1 < -4 or point - 1 >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{minus}{mantissa}e{'-' if point - 1 < 0 else '+'}{abs(point - 1):02d}"
    if point <= 0:
        return f"{minus}0.{'0' * -point}{text}"
    if point >= len(text):
        return minus + text + "0" * (point - len(text))
    return f"{minus}{text[:point]}.{text[point:]}"


def _exp_fix(text: str) -> str:
    """Python's ``1e+06`` is Go's too; Python's ``1e+100`` also: only a one-digit exponent differs."""
    return re.sub(r"e([+-])(\d)$", r"e\g<1>0\2", text)


def go_text(value: Any, top: bool = False) -> str:
    """``value`` as Go's ``%v`` prints it (``[a b]``, ``map[k:v]`` in key order, ``{f1 f2}``, ``<nil>``);
    with ``top`` as an action prints it (nil and an absent value: ``<no value>``)."""
    if value is MISSING or (top and value is None):
        return "<no value>"
    if value is None:
        return "<nil>"
    method = getattr(value, "go_text", None)
    if callable(method):
        return str(method())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{go_text(k)}:{go_text(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(go_text(v) for v in value) + "]"
    if is_struct(value):
        return "{" + " ".join(go_text(getattr(value, f.name)) for f in dataclasses.fields(value)) + "}"
    return str(value)


def struct_fields(value: Any) -> list[tuple[str, Any]]:
    """A struct's fields by name, in order (a :class:`Struct`'s or a dataclass's)."""
    if isinstance(value, Struct):
        return list(value.items())
    return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]


def go_syntax(value: Any, nested: bool = False) -> str:
    """``value`` as ``%#v`` prints it: ``"a"``, ``42``, ``[]interface {}{"a", 1}``,
    ``map[string]interface {}{"k":"v"}``, ``main.T{A:"a", B:2}``; nil is ``<nil>``, inside a slice or a
    map ``interface {}(nil)``."""
    if value is None or value is MISSING:
        return "interface {}(nil)" if nested else "<nil>"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool | int | float):
        return go_text(value)
    if is_struct(value):
        body = ", ".join(f"{k}:{go_syntax(v, True)}" for k, v in struct_fields(value))
        return f"{go_type(value)}{{{body}}}"
    if isinstance(value, Mapping):
        body = ", ".join(f"{go_syntax(k, True)}:{go_syntax(value[k], True)}" for k in sorted(value, key=str))
        return f"{go_type(value)}{{{body}}}"
    if isinstance(value, list | tuple):
        return f"{go_type(value)}{{{', '.join(go_syntax(v, True) for v in value)}}}"
    return go_text(value)


def go_fields(value: Any) -> str:
    """``value`` as ``%+v`` prints it: as ``%v``, a struct's fields by name (``{Arch:x86_64 OS:linux}``)."""
    if is_struct(value):
        return "{" + " ".join(f"{k}:{go_fields(v)}" for k, v in struct_fields(value)) + "}"
    if isinstance(value, Mapping) and not callable(getattr(value, "go_text", None)):
        return "map[" + " ".join(f"{go_text(k)}:{go_fields(value[k])}" for k in sorted(value, key=str)) + "]"
    if isinstance(value, list | tuple) and not callable(getattr(value, "go_text", None)):
        return "[" + " ".join(go_fields(v) for v in value) + "]"
    return go_text(value)


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def go_unquote(token: str) -> str:
    """A Go string constant's value: ```raw``` as written, ``"..."`` with Go's escapes (``\\n``,
    ``\\x41``, ``\\101``, ``\\u00e9``, ``\\U0001F600``); ValueError for a malformed one."""
    if len(token) >= 2 and token[0] == token[-1] == "`":
        return token[1:-1].replace("\r", "")
    if len(token) < 2 or token[0] != token[-1] or token[0] not in "\"'":
        raise ValueError("malformed string constant")
    quote, body, out, i = token[0], token[1:-1], [], 0
    raw = bytearray()  # \x and octal escapes are bytes: a run of them decodes as UTF-8
    while i < len(body):
        char = body[i]
        if char != "\\":
            if char == quote or char == "\n":
                raise ValueError("malformed string constant")
            out.append(_flush(raw) + char)
            i += 1
            continue
        kind = body[i + 1 : i + 2]
        if kind in _ESCAPES or kind == quote:
            out.append(_flush(raw) + _ESCAPES.get(kind, kind))
            i += 2
        elif kind == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", body[i + 2 : i + 4]):
            raw.append(int(body[i + 2 : i + 4], 16))
            i += 4
        elif kind in "01234567" and kind and re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
            if int(body[i + 1 : i + 4], 8) > 255:
                raise ValueError("malformed string constant")
            raw.append(int(body[i + 1 : i + 4], 8))
            i += 4
        elif kind in ("u", "U") and _hex(body, i + 2, size := 4 if kind == "u" else 8):
            code = int(body[i + 2 : i + 2 + size], 16)
            if code > 0x10FFFF or 0xD800 <= code < 0xE000:
                raise ValueError("malformed string constant")
            out.append(_flush(raw) + chr(code))
            i += 2 + size
        else:
            raise ValueError("malformed string constant")
    out.append(_flush(raw))
    return "".join(out)


def _hex(body: str, start: int, size: int) -> bool:
    return re.fullmatch(r"[0-9a-fA-F]+", body[start : start + size]) is not None and len(body) >= start + size


def _flush(raw: bytearray) -> str:
    text = raw.decode("utf-8", "surrogateescape") if raw else ""
    raw.clear()
    return text


def go_quote(text: str) -> str:
    """``strconv.Quote``: double-quoted with Go's escapes, printable characters as they are."""
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(char)])
        elif char.isprintable() or char == " ":
            out.append(char)
        elif ord(char) < 0x80 or 0xDC80 <= ord(char) <= 0xDCFF:  # a byte (kept by surrogateescape)
            out.append(f"\\x{ord(char) & 0xFF:02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out) + '"'


_VERB_RE = re.compile(r"%([-+# 0]*)(\d+)?(?:\.(\d*))?(.)?", re.DOTALL | re.ASCII)


def _go_num(digits: str) -> int | None:
    """A width or precision as Go's fmt reads it (``parsenum``): None once the number passed 1e6 before
    its next digit (Go then reads the rest of the format as no verb), so no huge padding is ever built."""
    number = 0
    for digit in digits:
        if number > 1_000_000:
            return None
        number = number * 10 + ord(digit) - 48
    return number


def sprintf(template: str, args: Sequence[Any]) -> str:
    """Go's ``fmt.Sprintf`` for the verbs templates use (``%s %d %v %q %x %X %t %f %e %g %c %o %b %T``,
    flags ``-+# 0``: ``%#v`` Go syntax, ``%+v`` a struct's field names, ``%#q`` backquoted; width and
    precision); a wrong verb, a missing or an extra argument prints as Go's
    ``%!d(string=x)``, ``%!s(MISSING)``, ``%!(EXTRA int=1)``."""
    out, used, pos = [], 0, 0
    while (start := template.find("%", pos)) >= 0:
        out.append(template[pos:start])
        match = _VERB_RE.match(template, start)
        assert match is not None
        flags, width, prec, verb = match.group(1), match.group(2), match.group(3), match.group(4)
        pos = match.end()
        if verb is None:
            out.append("%!(NOVERB)")
            continue
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        value = args[used]
        used += 1
        width_n, prec_n = _go_num(width or ""), _go_num(prec or "")
        if width_n is None or prec_n is None:  # Go's parsenum overflowed: the rest is no verb
            used -= 1
            out.append("%!(NOVERB)")
            pos = len(template)
            break
        text = _verb(verb, flags, None if prec is None else prec_n, value)
        out.append(_pad(text, width_n, flags, verb))
    out.append(template[pos:])
    if used < len(args):
        extra = ", ".join(f"{go_type(v)}={go_text(v)}" for v in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _pad(text: str, width: int, flags: str, verb: str) -> str:
    if len(text) >= width:
        return text
    if "-" in flags:
        return text.ljust(width)
    if "0" in flags and verb in "dfFeEgGxXob" and not text.startswith("%!"):
        sign = text[0] if text[:1] in "+-" else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)


def _rune(value: int) -> str:
    """The character of code point ``value``; U+FFFD for one that is none (negative, a surrogate, past
    U+10FFFF), as Go's fmt prints an invalid rune."""
    if 0 <= value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
        return chr(value)
    return "\ufffd"


def _bad(verb: str, value: Any) -> str:
    if value is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(value)}={go_text(value)})"


def _verb(verb: str, flags: str, prec: int | None, value: Any) -> str:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if verb == "T":
        return go_type(value)
    if verb == "v":
        return go_syntax(value) if "#" in flags else go_fields(value) if "+" in flags else go_text(value)
    if isinstance(value, list | tuple) and verb in "sdqxXfeEgGt":
        return "[" + " ".join(_verb(verb, flags, prec, v) for v in value) + "]"
    if (
        verb == "s"
        and isinstance(value, str)
        or (verb == "s" and isinstance(value, Mapping) or is_struct(value))
    ):
        text = value if isinstance(value, str) else go_text(value)
        return text if prec is None else text[:prec]
    if verb == "q" and isinstance(value, str):
        return f"`{value}`" if "#" in flags and _backquotable(value) else go_quote(value)
    if verb == "q" and is_int:
        return "'" + go_quote(_rune(value))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'"
    if verb == "t" and isinstance(value, bool):
        return "true" if value else "false"
    if verb == "c" and is_int:
        return _rune(value)
    if verb in "dobxX" and is_int:
        base = {"d": "d", "o": "o", "b": "b", "x": "x", "X": "X"}[verb]
        sign = "+" if "+" in flags and value >= 0 else ""
        prefix = {"o": "0", "x": "0x", "X": "0X", "b": ""}.get(verb, "") if "#" in flags else ""
        digits = format(abs(value), base)
        return f"{'-' if value < 0 else sign}{prefix}{digits}"
    if verb in "xX" and isinstance(value, str):
        text = value.encode("utf-8", "surrogateescape").hex()
        return text.upper() if verb == "X" else text
    if verb in "fFeEgG" and isinstance(value, float):
        text = go_float(value, verb.lower() if verb in "gG" else verb, -1 if prec is None else prec)
        text = text.upper() if verb == "G" else text
        return ("+" + text) if "+" in flags and not text.startswith("-") else text
    return _bad(verb, value)


def _backquotable(text: str) -> bool:
    """``strconv.CanBackquote``: no control character but a tab, no backquote, BOM or invalid byte."""
    return not any(
        (ord(c) < 0x20 and c != "\t") or c in "`\x7f\ufeff" or 0xD800 <= ord(c) <= 0xDFFF for c in text
    )


def html_escape(text: str) -> str:
    """``template.HTMLEscapeString``."""
    table = {"<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&#39;", '"': "&#34;", "\0": "\ufffd"}
    return "".join(table.get(c, c) for c in text)


def js_escape(text: str) -> str:
    """``template.JSEscapeString``."""
    table = {
        "\\": "\\\\",
        "'": "\\'",
        '"': '\\"',
        "<": "\\u003C",
        ">": "\\u003E",
        "&": "\\u0026",
        "=": "\\u003D",
    }
    out = []
    for char in text:
        if char in table:
            out.append(table[char])
        elif ord(char) < 0x20 or not char.isprintable() and char != " ":
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return "".join(out)
