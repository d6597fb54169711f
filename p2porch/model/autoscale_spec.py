"""The ``autoscale`` part of a service spec: bounds, targets and delays, validated (pure).

``AutoscaleSpec.from_dict`` accepts the canonical keys and the Compose/CLI spellings (``min``,
``max``, ``cpu_percent``/``cpu-percent``, ``scale_down_delay``...) and raises ``ConfigError`` naming
``autoscale.<key>``; ``ServiceSpec`` refuses it on a global service. The leader's recommender reads
it; nothing here decides a replica count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["AutoscaleSpec", "AutoscaleStep"]

MAX_AUTOSCALE_REPLICAS = 1000
_KEYS = {
    "min": "min_replicas",
    "min_replicas": "min_replicas",
    "max": "max_replicas",
    "max_replicas": "max_replicas",
    "cpu_percent": "cpu_percent",
    "cpu-percent": "cpu_percent",
    "memory_percent": "memory_percent",
    "memory-percent": "memory_percent",
    "scale_up_delay": "scale_up_delay_s",
    "scale-up-delay": "scale_up_delay_s",
    "scale_up_delay_s": "scale_up_delay_s",
    "scale_down_delay": "scale_down_delay_s",
    "scale-down-delay": "scale_down_delay_s",
    "scale_down_delay_s": "scale_down_delay_s",
}


def _err(key: str, message: str) -> ConfigError:
    return ConfigError(f"{key}: {message}", field=key)


@dataclass(frozen=True, slots=True)
class AutoscaleSpec:
    """Autoscale between ``min_replicas`` and ``max_replicas`` on CPU and/or memory percent of limit."""

    min_replicas: int
    max_replicas: int
    cpu_percent: float | None = None
    memory_percent: float | None = None
    scale_up_delay_s: float = 0.0
    scale_down_delay_s: float = 300.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "cpu_percent": self.cpu_percent,
            "memory_percent": self.memory_percent,
            "scale_up_delay_s": self.scale_up_delay_s,
            "scale_down_delay_s": self.scale_down_delay_s,
        }

    @classmethod
    def from_dict(cls, data: Any, prefix: str, parse_duration: Callable[..., float]) -> AutoscaleSpec | None:
        """Validate plain data; None (or ``{"off": true}``) means no autoscaling."""
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise _err(prefix, f"expected a mapping, got {type(data).__name__}")
        if data.get("off") is True and len(data) == 1:
            return None
        kw: dict[str, Any] = {}
        for key, value in data.items():
            canonical = _KEYS.get(str(key))
            name = f"{prefix}.{key}"
            if canonical is None:
                raise _err(name, f"unknown key (known: {', '.join(sorted(set(_KEYS.values())))})")
            if canonical in kw:
                raise _err(name, "given twice")
            if canonical.endswith("_replicas"):
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int)
                    or not 0 <= value <= MAX_AUTOSCALE_REPLICAS
                ):
                    raise _err(name, f"must be an integer from 0 to {MAX_AUTOSCALE_REPLICAS}")
                kw[canonical] = value
            elif canonical.endswith("_percent"):
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 100:
                    raise _err(name, "must be a percent of the task's limit from 1 to 100")
                kw[canonical] = float(value)
            else:
                kw[canonical] = parse_duration(value, fieldname=name)
        for canonical, short in (("min_replicas", "min"), ("max_replicas", "max")):
            if canonical not in kw:
                raise _err(f"{prefix}.{short}", "is required")
        if kw["min_replicas"] > kw["max_replicas"]:
            raise _err(f"{prefix}.min", f"min {kw['min_replicas']} is above max {kw['max_replicas']}")
        if kw.get("cpu_percent") is None and kw.get("memory_percent") is None:
            raise _err(f"{prefix}.cpu_percent", "give a cpu and/or a memory percent target")
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class AutoscaleStep:
    """The autoscaler's last committed step of a service: when, from and to how many replicas, why, and
    the recommender's inputs (written with the new ``replicas`` in one ``update_service``)."""

    at: float
    from_replicas: int
    to_replicas: int
    reason: str
    inputs: tuple[tuple[str, float | int | str | None], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "from": self.from_replicas,
            "to": self.to_replicas,
            "reason": self.reason,
            "inputs": dict(self.inputs),
        }

    @classmethod
    def from_dict(cls, data: Any) -> AutoscaleStep | None:
        """A stored step, or None when there is none or it is malformed (lenient: bookkeeping only)."""
        if not isinstance(data, Mapping):
            return None
        try:
            inputs = data.get("inputs") or {}
            return cls(
                at=float(data["at"]),
                from_replicas=int(data["from"]),
                to_replicas=int(data["to"]),
                reason=str(data.get("reason", "")),
                inputs=tuple(
                    (str(k), v if isinstance(v, int | float | str) or v is None else str(v))
                    for k, v in sorted(inputs.items())
                )
                if isinstance(inputs, Mapping)
                else (),
            )
        except (KeyError, TypeError, ValueError):
            return None
