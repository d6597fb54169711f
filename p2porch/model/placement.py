"""Placement rules of a service spec: constraints, spread preferences, (anti-)affinity (pure).

Each rule is a frozen value with a parser for its CLI/Compose text form; a bad expression is a
``ConfigError`` naming the field. Evaluating rules against nodes is the scheduler's job, not this module's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .units import field_error

ROLES = ("voter", "replica")
SWARM_ROLES = {"manager": "voter", "worker": "replica"}  # node.role==manager as a Swarm user types it
NAME_RE = re.compile(r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL_KEY_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._/-]*[A-Za-z0-9])?$")
_NODE_ATTRS = ("node.id", "node.name", "node.hostname", "node.role", "node.platform.os")
#: Swarm's ``node.platform.os``: every node's, since the daemon runs on Linux only (netlink, VXLAN)
NODE_OS = "linux"


def _check_node_attribute(attr: str, fieldname: str) -> None:
    if attr in _NODE_ATTRS:
        return
    if attr.startswith("node.labels."):
        key = attr[len("node.labels.") :]
        if _LABEL_KEY_RE.match(key):
            return
        raise field_error(fieldname, f"invalid label key {key!r}")
    if attr == "node.platform.arch":
        raise field_error(
            fieldname,
            "node.platform.arch: nodes do not report their architecture to the scheduler; label them "
            "(node update --label-add arch=arm64 NODE) and use node.labels.arch",
        )
    raise field_error(
        fieldname,
        f"unknown attribute {attr!r} (use node.labels.KEY, node.name, node.id, node.hostname, node.role, "
        "node.platform.os)",
    )


@dataclass(frozen=True, slots=True)
class Constraint:
    """A hard placement rule on one node attribute: ``node.labels.ssd==true``, ``node.name!=n2``."""

    attribute: str
    op: str
    value: str

    def __str__(self) -> str:
        return f"{self.attribute}{self.op}{self.value}"


def parse_constraint(expr: str, *, fieldname: str = "constraint") -> Constraint:
    """Parse ``ATTR==VALUE`` or ``ATTR!=VALUE`` (ATTR: node.labels.KEY, node.name, node.id, node.hostname,
    node.role with values voter|replica, or Swarm's manager|worker for them, node.platform.os)."""
    if not isinstance(expr, str):
        raise field_error(
            fieldname, f"expected a string such as node.labels.ssd==true, got {type(expr).__name__}"
        )
    for op in ("==", "!="):
        if op in expr:
            attr, _, value = expr.partition(op)
            attr, value = attr.strip(), value.strip()
            break
    else:
        raise field_error(fieldname, f"{expr!r} has no == or != operator")
    _check_node_attribute(attr, fieldname)
    if not value or "==" in value or "!=" in value:
        raise field_error(fieldname, f"{expr!r} needs one non-empty value")
    if attr == "node.role":
        value = value.lower()  # matched ignoring case, as every constraint (scheduler/filters.py)
        value = SWARM_ROLES.get(value, value)  # Swarm's managers are its Raft voters, as p2porch's
        if value not in ROLES:
            raise field_error(
                fieldname, f"node.role is voter or replica, or manager or worker (got {value!r})"
            )
    return Constraint(attr, op, value)


@dataclass(frozen=True, slots=True)
class PlacementPreference:
    """Spread tasks evenly over the values of one node attribute (``spread=node.labels.zone``)."""

    attribute: str

    def __str__(self) -> str:
        return f"spread={self.attribute}"


def parse_placement_pref(expr: str, *, fieldname: str = "placement_pref") -> PlacementPreference:
    """Parse ``spread=node.labels.KEY`` (or another node attribute)."""
    if not isinstance(expr, str):
        raise field_error(fieldname, f"expected spread=node.labels.KEY, got {type(expr).__name__}")
    kind, sep, attr = expr.partition("=")
    if not sep or kind.strip() != "spread":
        raise field_error(fieldname, f"{expr!r}: only spread=ATTRIBUTE is supported")
    attr = attr.strip()
    _check_node_attribute(attr, fieldname)
    return PlacementPreference(attr)


@dataclass(frozen=True, slots=True)
class Affinity:
    """Co-location rule against another service's tasks.

    ``affinity=service==db``: only nodes already running a task of ``db``.
    ``anti-affinity=service==web``: only nodes running no task of ``web`` (on itself: one task per node).
    """

    kind: str  # "affinity" | "anti-affinity"
    service: str

    def __str__(self) -> str:
        return f"{self.kind}=service=={self.service}"


def parse_affinity(expr: str, *, fieldname: str = "affinity") -> Affinity:
    """Parse ``affinity=service==NAME`` or ``anti-affinity=service==NAME``."""
    if not isinstance(expr, str):
        raise field_error(fieldname, f"expected affinity=service==NAME, got {type(expr).__name__}")
    kind, sep, rest = expr.partition("=")
    kind = kind.strip()
    if not sep or kind not in ("affinity", "anti-affinity"):
        raise field_error(fieldname, f"{expr!r}: use affinity=service==NAME or anti-affinity=service==NAME")
    attr, sep, name = rest.partition("==")
    name = name.strip()
    if not sep or attr.strip() != "service":
        raise field_error(fieldname, f"{expr!r}: the only affinity attribute is service==NAME")
    if not NAME_RE.match(name):
        raise field_error(fieldname, f"{name!r} is not a valid service name")
    return Affinity(kind, name)
