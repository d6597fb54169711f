"""Go values of Docker's JSON as a template sees them (pure): a struct with its Go type name and its
``omitempty`` fields, typed slices and maps (the engine's ``GoList``/``GoMap``: ``[]swarm.PortConfig``,
``map[string]string``), a
``time.Time``, a ``time.Duration`` (``5s``; JSON nanoseconds), an ``os.FileMode`` (``-r--r--r--``; JSON
292) and an unsigned integer (``uint64``).

Owns how these print (``%v``, ``%T``, ``{{json}}``), never where their values come from (docker_paths.py,
docker_spec.py).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from ..model.gotemplate import GoList, GoMap, Struct


class GoStruct(Struct):
    """A Go struct of Docker's JSON, its fields in order: JSON as Go's encoder writes it (``omitempty``
    fields left out when empty), text as Go's ``%v`` (``{ tcp 80 8080 ingress}``)."""

    omitempty: frozenset[str] = frozenset()

    def __init__(self, *fields: dict[str, Any], **named: Any) -> None:
        super().__init__()
        for one in fields:
            self.update(one)
        self.update(named)


def go_struct(go_type: str, omitempty: Iterable[str] = (), /, **fields: Any) -> GoStruct:
    """A :class:`GoStruct` of type ``go_type`` (``%T``: ``swarm.PortConfig``)."""
    value = GoStruct(fields)
    value.go_type, value.omitempty = go_type, frozenset(omitempty)
    return value


def strings(items: Iterable[Any]) -> GoList:
    return GoList("[]string", (str(i) for i in items))


def string_map(items: Any) -> GoMap:
    return GoMap("map[string]string", {str(k): str(v) for k, v in dict(items or {}).items()})


class GoUint(int):
    """A Go ``uint64`` (``%T``)."""

    go_type = "uint64"


class GoDuration(int):
    """A Go ``time.Duration`` in nanoseconds: text as its ``String()`` (``5s``, ``1m30s``, ``500ms``),
    JSON the nanoseconds."""

    go_type = "time.Duration"

    @classmethod
    def of_seconds(cls, seconds: float | None) -> GoDuration:
        return cls(round((seconds or 0) * 1e9))

    def go_text(self) -> str:
        return go_duration(int(self))

    def json_value(self) -> int:
        return int(self)


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()``: ``0s``, ``1.5s``, ``2h3m4s``, ``300ms``, ``1.5µs``, ``7ns``."""
    if ns == 0:
        return "0s"
    sign, ns = ("-" if ns < 0 else ""), abs(ns)
    if ns < 1_000_000_000:
        for unit, size, digits in (("ms", 1_000_000, 6), ("µs", 1_000, 3)):
            if ns >= size:
                return sign + _fraction(ns // size, ns % size, digits) + unit
        return f"{sign}{ns}ns"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _fraction(rest // 1_000_000_000, rest % 1_000_000_000, 9) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _fraction(whole: int, part: int, digits: int) -> str:
    fraction = f"{part:0{digits}d}".rstrip("0")
    return f"{whole}.{fraction}" if fraction else str(whole)


class GoFileMode(int):
    """A Go ``os.FileMode``: text as its ``String()`` (``-r--r--r--``), JSON the number."""

    go_type = "os.FileMode"

    def go_text(self) -> str:
        bits = int(self) & 0o777
        return "-" + "".join(c if bits & (1 << (8 - i)) else "-" for i, c in enumerate("rwxrwxrwx"))

    def json_value(self) -> int:
        return int(self)


class GoTime(float):
    """An epoch time as Go's ``time.Time``: text ``2026-12-05 09:00:00.5 +0000 UTC``, JSON RFC 3339."""

    go_type = "time.Time"

    def moment(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(float(self), tz=datetime.UTC)

    def _seconds(self, between: str) -> str:
        moment = self.moment()
        fraction = f"{moment.microsecond:06d}".rstrip("0")  # Go drops the trailing zeros
        return moment.strftime(f"%Y-%m-%d{between}%H:%M:%S") + (f".{fraction}" if fraction else "")

    def go_text(self) -> str:
        return self._seconds(" ") + " +0000 UTC"

    def json_value(self) -> str:
        return self._seconds("T") + "Z"
