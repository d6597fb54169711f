"""Typed Raft commands for user-defined networks (pure).

The FSM handlers are in ``fsm_networks.py``; the dispatch table in ``commands.py``. Field shapes are
checked here (the decoder is an edge); names, reservations and uses are checked by the FSM against the
state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import fields as F
from .codec import Command

NETWORK_DRIVERS = ("overlay",)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateNetwork(Command):
    """Create a user-defined network (refused if its name is taken or reserved)."""

    TAG = "create_network"
    network_id: str
    name: str
    driver: str = "overlay"
    internal: bool = False
    attachable: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {
            "network_id": self.network_id,
            "name": self.name,
            "driver": self.driver,
            "internal": self.internal,
            "attachable": self.attachable,
            "labels": dict(self.labels),
        }

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> CreateNetwork:
        driver = F.get(b, "driver", str)
        if driver not in NETWORK_DRIVERS:
            raise F.invalid(f"driver must be one of {', '.join(NETWORK_DRIVERS)}", "driver")
        return cls(
            network_id=F.text(b, "network_id"),
            name=F.text(b, "name"),
            driver=driver,
            internal=F.get(b, "internal", bool),
            attachable=F.get(b, "attachable", bool),
            labels=F.labels(b.get("labels") or {}, "labels"),
            **common,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveNetwork(Command):
    """Delete a network; refused (ConflictError naming them) while a service is attached to it."""

    TAG = "remove_network"
    name: str

    def body(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_body(cls, b: Mapping[str, Any], version: int, **common: Any) -> RemoveNetwork:
        return cls(name=F.text(b, "name"), **common)
