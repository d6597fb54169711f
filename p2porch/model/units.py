"""Units, scalar parsers and field helpers shared by every spec type (pure).

Sizes (``512M``), CPUs (``0.5``), Go-style durations (``1m30s``), integers, booleans, choices and
``KEY=VALUE`` lists, each turned into base units or a ``ConfigError`` whose ``field`` names the key.
Never does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError

NANOS_PER_CPU = 1_000_000_000
_ENV_KEY_RE = re.compile(r"^[^=\s]+$")


def field_error(fieldname: str, message: str) -> ConfigError:
    return ConfigError(f"{fieldname}: {message}", field=fieldname)


SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
    "t": 1024**4,
    "tb": 1024**4,
    "tib": 1024**4,
    "p": 1024**5,
    "pb": 1024**5,
    "pib": 1024**5,
}
MAX_INT64 = 2**63 - 1  # the largest size Docker's API (Go's int64) and a Raft entry (msgpack) hold
MAX_CPUS = 1_000_000  # CPUs a spec may name: nano CPUs of it fit an int64 many times over
_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$")


def parse_memory_bytes(value: str | int, *, fieldname: str = "memory") -> int:
    """``512M``, ``1G``, ``1.5GiB``, ``100k``, ``1024`` or an int -> bytes (all units binary, like Docker)."""
    if isinstance(value, bool):
        raise field_error(fieldname, "expected a size such as 512M")
    if isinstance(value, int):
        if value < 0:
            raise field_error(fieldname, "must not be negative")
        if value > MAX_INT64:
            raise field_error(fieldname, f"must be at most {MAX_INT64} bytes")
        return value
    if not isinstance(value, str):
        raise field_error(fieldname, f"expected a size such as 512M, got {type(value).__name__}")
    m = _SIZE_RE.match(value)
    if m is None or m.group(2).lower() not in SIZE_UNITS:
        raise field_error(fieldname, f"invalid size {value!r} (use e.g. 512M, 1G, 1.5GiB or bytes)")
    from decimal import Decimal  # here: ~0.4 MB an idle daemon never needs (docs/performance.md)

    size = Decimal(m.group(1)) * SIZE_UNITS[m.group(2).lower()]
    if size > MAX_INT64:  # Docker's int64; past it the Raft entry could not even be encoded
        raise field_error(fieldname, f"must be at most {MAX_INT64} bytes")
    return int(size)


def format_bytes(n: int) -> str:
    """Short human form used in explanations: 536870912 -> '512MiB', 1536 -> '1.5KiB'."""
    for unit, size in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            text = f"{n / size:.2f}".rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{n}B"


def parse_cpu_nanos(value: str | float | int, *, fieldname: str = "cpu") -> int:
    """CPUs as a decimal (``1.5``, ``"0.25"``) -> nano CPUs (1.5 -> 1_500_000_000)."""
    if isinstance(value, bool):
        raise field_error(fieldname, "expected a number of CPUs such as 0.5")
    from decimal import Decimal, InvalidOperation  # here, like parse_memory_bytes

    try:
        dec = Decimal(str(value).strip()) if isinstance(value, str | int | float) else None
    except InvalidOperation:
        dec = None
    if dec is None or not dec.is_finite():
        raise field_error(fieldname, f"invalid number of CPUs {value!r}")
    if dec < 0:
        raise field_error(fieldname, "must not be negative")
    if dec > MAX_CPUS:  # compared before scaling: 1e99999999 CPUs would overflow the decimal context
        raise field_error(fieldname, f"must be at most {MAX_CPUS} CPUs")
    return int((dec * NANOS_PER_CPU).to_integral_value())


def format_cpus(nanos: int) -> str:
    """1_500_000_000 -> '1.5 CPUs'."""
    text = f"{nanos / NANOS_PER_CPU:.3f}".rstrip("0").rstrip(".")
    return f"{text} CPU" + ("" if text == "1" else "s")


_DUR_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DUR_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)")


def parse_duration_s(value: str | float | int, *, fieldname: str = "duration") -> float:
    """Go-style durations (``30s``, ``1m30s``, ``500ms``, ``2h``) or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise field_error(fieldname, "expected a duration such as 5s")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _DUR_PART_RE.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _DUR_UNITS[m.group(2)]
                pos = m.end()
            if pos != len(text) or not text:
                raise field_error(
                    fieldname, f"invalid duration {value!r} (use e.g. 500ms, 5s, 1m30s)"
                ) from None
    else:
        raise field_error(fieldname, f"expected a duration such as 5s, got {type(value).__name__}")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise field_error(fieldname, "duration must be finite")
    if seconds < 0:
        raise field_error(fieldname, "must not be negative")
    return seconds


_GO_UNIT_NANOS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9}
_GO_UNIT_NANOS["h"] = 3600 * 10**9
#: compose-go decodes durations with str2duration v2: Go's grammar plus days and weeks
_COMPOSE_UNIT_NANOS = {**_GO_UNIT_NANOS, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}
_GO_NUMBER_RE = re.compile(r"([0-9]*)(?:\.([0-9]*))?")
_GO_MAX_NANOS = 2**63 - 1


def parse_go_duration(text: str, *, days_weeks: bool = False) -> float:
    """Seconds of ``text`` read as Go's ``time.ParseDuration`` reads it (what Docker's CLI does with a
    duration flag): a signed sequence of decimal numbers each with a unit, or ``0``; a bare ``10`` is
    ``time: missing unit in duration "10"``. With ``days_weeks``, compose-go's reader (str2duration v2,
    the same grammar plus ``d`` and ``w``). ValueError carrying Go's message otherwise."""
    units = _COMPOSE_UNIT_NANOS if days_weeks else _GO_UNIT_NANOS
    quoted = f'"{text}"'
    rest, negative = text, False
    if rest[:1] in ("-", "+"):
        negative, rest = rest[0] == "-", rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0
    while rest:
        number = _GO_NUMBER_RE.match(rest)
        assert number is not None  # the pattern matches the empty string
        whole, fraction = number.group(1), number.group(2) or ""
        if not whole and not fraction:  # not [0-9.], or a lone "." (".s")
            raise ValueError(f"time: invalid duration {quoted}")
        rest = rest[number.end() :]
        end = 0
        while end < len(rest) and not (rest[end] == "." or "0" <= rest[end] <= "9"):
            end += 1
        if end == 0:
            raise ValueError(f"time: missing unit in duration {quoted}")
        unit, rest = rest[:end], rest[end:]
        if unit not in units:
            raise ValueError(f'time: unknown unit "{unit}" in duration {quoted}')
        nanos = int(whole or "0") * units[unit]
        if fraction:
            nanos += int(int(fraction) * (units[unit] / 10 ** len(fraction)))
        total += nanos
        if total > _GO_MAX_NANOS + negative:
            raise ValueError(f"time: invalid duration {quoted}")
    return (-total if negative else total) / 1e9


def parse_int(value: Any, fieldname: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise field_error(fieldname, "expected an integer")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise field_error(fieldname, f"expected an integer, got {value!r}") from None
    if value is None:
        raise field_error(fieldname, "is required (an integer)")
    if not isinstance(value, int):
        raise field_error(fieldname, f"expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise field_error(fieldname, f"must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise field_error(fieldname, f"must be at most {maximum}")
    return value


def parse_bool(value: Any, fieldname: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", ""):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no"):
        return False
    raise field_error(fieldname, f"expected true or false, got {value!r}")


def parse_choice(value: Any, choices: Sequence[str], fieldname: str) -> str:
    if not isinstance(value, str) or value not in choices:
        raise field_error(fieldname, f"must be one of {', '.join(choices)} (got {value!r})")
    return value


def parse_key_values(
    items: Mapping[str, Any] | Iterable[str], *, fieldname: str
) -> tuple[tuple[str, str], ...]:
    """``["K=V", ...]`` or ``{"K": "V"}`` -> sorted ``((K, V), ...)``; duplicate or empty keys are errors."""
    out: dict[str, str] = {}
    if isinstance(items, Mapping):
        pairs = [(str(k), v, f"{fieldname}.{k}") for k, v in items.items()]
    elif isinstance(items, str) or not isinstance(items, Iterable):
        raise field_error(fieldname, "expected a list of KEY=VALUE or a mapping")
    else:
        pairs = []
        for i, item in enumerate(items):
            if not isinstance(item, str) or "=" not in item:
                raise field_error(f"{fieldname}[{i}]", f"expected KEY=VALUE, got {item!r}")
            key, _, value = item.partition("=")
            pairs.append((key, value, f"{fieldname}[{i}]"))
    for key, value, where in pairs:
        if not _ENV_KEY_RE.match(key):
            raise field_error(where, f"invalid key {key!r}")
        if key in out:
            raise field_error(where, f"key {key!r} given twice")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise field_error(where, "value must be a string")
        out[key] = str(value)
    return tuple(sorted(out.items()))


def take_fields(data: Mapping[str, Any], prefix: str, keys: Mapping[str, str]) -> dict[str, tuple[str, Any]]:
    """Map accepted keys (canonical and human aliases) to canonical names; unknown/duplicate -> error."""
    if not isinstance(data, Mapping):
        raise field_error(prefix, "expected a mapping")
    out: dict[str, tuple[str, Any]] = {}
    for key, value in data.items():
        if key not in keys:
            raise field_error(f"{prefix}.{key}" if prefix else str(key), "unknown field")
        canonical = keys[key]
        if canonical in out:
            raise field_error(
                f"{prefix}.{key}" if prefix else str(key), f"given twice (as {out[canonical][0]})"
            )
        out[canonical] = (key, value)
    return out


def duration_field(entry: tuple[str, Any] | None, prefix: str, default: float) -> float:
    if entry is None:
        return default
    key, value = entry
    return parse_duration_s(value, fieldname=f"{prefix}.{key}" if prefix else key)


def str_tuple(value: Any, fieldname: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise field_error(fieldname, "expected a list of strings")
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise field_error(fieldname, "expected a list of strings")
    return tuple(value)


def list_field(value: Any, fieldname: str) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise field_error(fieldname, "expected a list")
    return list(value)
