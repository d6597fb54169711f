"""Small typed readers of Compose values, raising ``ConfigError`` named by the Compose path (pure)."""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigError
from ..model.units import parse_go_duration
from .casts import to_boolean


def err(path: str, message: str) -> ConfigError:
    return ConfigError(f"{path}: {message}", field=path)


def kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return f"a {type(value).__name__}"


def mapping(value: Any, path: str, allowed: Sequence[str], *, extensions: bool = True) -> Mapping[str, Any]:
    """``value`` as a mapping whose keys are all in ``allowed`` (and ``x-*`` if ``extensions``)."""
    if not isinstance(value, Mapping):
        raise err(path or "compose", f"expected a mapping, got {kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise err(path, f"key {key!r} must be a string")
        if key in allowed or (extensions and key.startswith("x-")):
            continue
        raise err(f"{path}.{key}" if path else key, "unknown key")
    return value


def any_mapping(value: Any, path: str) -> Mapping[str, Any]:
    """A mapping with string keys, any of them."""
    if not isinstance(value, Mapping):
        raise err(path, f"expected a mapping, got {kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise err(path, f"key {key!r} must be a string")
    return value


def list_(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise err(path, f"expected a list, got {kind(value)}")
    return list(value)


def string(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise err(path, f"expected a string, got {kind(value)}")
    return value


def scalar_text(value: Any, path: str) -> str:
    """A YAML scalar as the string Compose would use (``true`` -> "true", ``3`` -> "3")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return go_float_text(value)
    if isinstance(value, int):
        return str(value)
    raise err(path, f"expected a string or number, got {kind(value)}")


def duration(value: Any, path: str) -> Any:
    """A Compose duration as compose-go takes one: a string in Go's duration grammar plus days and weeks
    (str2duration: ``10s``, ``1m30s``, ``1d``, a lone ``0``), as seconds for the spec. A YAML number
    (``10``) is refused as compose-go's schema refuses it (compose-spec.json: ``type: string``), a
    bare number string (``"10"``, what ``${DELAY:-10}`` gives) in Go's words: ``time: missing unit in
    duration "10"``. Anything else (null, a mapping) goes on for the spec to refuse."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = scalar_text(value, path)
        raise err(path, f"must be a string: a duration with a unit, such as '{text}s' (got {kind(value)})")
    if not isinstance(value, str):
        return value
    try:
        return parse_go_duration(value, days_weeks=True)
    except ValueError as exc:
        raise err(path, f"{exc}: a duration with a unit, such as 10s, 1m30s or 1d") from None


def durations(conf: Mapping[str, Any], path: str, names: Sequence[str]) -> dict[str, Any]:
    """``conf`` with each of ``names`` it has read by :func:`duration` (named ``<path>.<name>``)."""
    return {k: duration(v, f"{path}.{k}") if k in names else v for k, v in conf.items()}


def go_float_text(value: float) -> str:
    """A YAML float as compose-go writes it into a string field (Go's ``fmt.Sprint``, ``%v``).

    The shortest digits that read back the same, as Python's ``repr``; in exponent form when the
    exponent is below -4 or at least 6 (``1e+06``, two exponent digits at least), else without
    one and without a trailing ``.0`` (``1.0`` -> "1", ``0189`` read as a float -> "189").
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    mantissa, _, exp = repr(abs(value)).partition("e")  # repr: the shortest digits ("1.5e-07")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac).lstrip("0")
    point = len(whole) + int(exp or 0) - (len(whole + frac) - len(digits))  # the point's place in digits
    digits = digits.rstrip("0")
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        rest = f".{digits[1:]}" if len(digits) > 1 else ""
        return f"{sign}{digits[0]}{rest}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def key_values(value: Any, path: str) -> dict[str, str]:
    """Labels, sysctls... as a list of ``K=V`` or a mapping -> dict (a key without value is "").

    The list form's key loses the blanks around it (``APP = X``: key ``APP``, value `` X`` as written),
    as merge.key_value_map reads it; a blank inside a key is refused."""
    out: dict[str, str] = {}
    if isinstance(value, Mapping):
        pairs = [(k, v, f"{path}.{k}") for k, v in value.items()]
    else:
        pairs = []
        for i, item in enumerate(list_(value, path)):
            key, _, val = string(item, f"{path}[{i}]").partition("=")
            pairs.append((key.strip(), val, f"{path}[{i}]"))
    for key, val, where in pairs:
        if not isinstance(key, str) or not key.strip() or any(c.isspace() for c in key):
            raise err(where, f"invalid key {key!r}")
        out[key] = "" if val is None else scalar_text(val, where)
    return out


def boolean(value: Any, path: str) -> bool:
    """A boolean, or a string Compose casts to one (``true``/``yes``/``on``/``y``, ``false``/``no``/...)."""
    value = to_boolean(value)
    if isinstance(value, bool):
        return value
    raise err(path, f"expected true or false, got {kind(value)}")


def words(value: Any, path: str) -> list[str]:
    """``command``/``entrypoint``: a string is split like a shell would; a list is taken as is."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise err(path, f"cannot split {value!r} into words: {exc}") from None
    out = []
    for i, item in enumerate(list_(value, path)):
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise err(f"{path}[{i}]", f"expected a string, got {kind(item)}")
        out.append(str(item))
    return out


def string_list(value: Any, path: str) -> list[str]:
    """A string or a list of strings/numbers -> list of strings."""
    if isinstance(value, str):
        return [value]
    out = []
    for i, item in enumerate(list_(value, path)):
        out.append(scalar_text(item, f"{path}[{i}]"))
    return out
