"""A service named as Swarm names a stack's services (``shop_web`` for p2porch's ``shop-web``): the lookup
``service`` commands and ``service usage`` share (pure over the committed state; never writes)."""

from __future__ import annotations

from ..errors import NotFoundError
from ..model import Service
from ..raft.state import ClusterState
from ..stack.names import swarm_service_name

__all__ = ["service_by_swarm_name"]


def service_by_swarm_name(state: ClusterState, ref: str) -> Service | None:
    """The stack member ``ref`` names as Swarm names it (``shop_web``: p2porch's ``shop-web``), if one;
    NotFoundError naming them when two do (stack ``a_b`` service ``c`` and stack ``a`` service ``b_c``)."""
    if "_" not in ref:
        return None
    found = [
        s
        for s in state.services.values()
        if (swarm_service_name(s.spec.labels_dict()) or "").lower() == ref.lower()
    ]
    if len(found) > 1:
        names = " and ".join(sorted(s.spec.name for s in found))
        raise NotFoundError(
            f"service {ref} is ambiguous: the Swarm name of {names}; use one of these names", field="SERVICE"
        )
    return found[0] if found else None
