"""Which ``--secret-rm``/``--config-rm``/``--network-rm`` names of an update are ignored (pure).

Owns one decision: a removal naming an object that exists in the cluster but that the service does not
use is dropped with a warning, as Docker's CLI ignores it (a revoke loop over every service must not
stop); a name that is neither (a typo) is left for the update to refuse, and so is the default network
when the update leaves the service on no other (``network_ops.network_changes`` refuses it). Never
writes, never refuses.
"""

from __future__ import annotations

from typing import Any

from ..model import secret_key
from ..model.netrefs import HOST_NETWORK
from ..raft.fsm_networks import DEFAULT_NETWORK
from ..raft.state import ClusterState
from ..vault import KINDS
from .network_ops import attached_targets
from .secret_ops import uses_ref


def _exists(state: ClusterState, kind: str, name: object) -> bool:
    if not isinstance(name, str):
        return False
    if kind == "network":
        return name in (DEFAULT_NETWORK, HOST_NETWORK) or state.network_by_name(name) is not None
    return secret_key(kind, name) in state.secrets


def unused_removals(
    state: ClusterState, current: dict[str, Any], changes: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """``changes`` without the removals of existing objects ``current`` (a spec dict) does not use, and
    one warning per removal dropped."""
    out, warnings = dict(changes), list[str]()
    for kind in (*KINDS, "network"):
        key = f"{kind}s_rm"
        rm = out.get(key)
        if not isinstance(rm, list) or not rm:
            continue
        if kind == "network":
            on = attached_targets(current if "networks" not in out else {"networks": out["networks"]})
            unused = [n for n in rm if n not in on and _exists(state, kind, n)]
            if not (on - set(rm)) and not out.get("networks_add"):  # left on the default one: refused
                unused = [n for n in unused if n != DEFAULT_NETWORK]  # by network_changes, not ignored
        else:
            refs = list(out.get(kind + "s", current.get(kind + "s") or []))
            unused = [n for n in rm if not uses_ref(kind, refs, n) and _exists(state, kind, n)]
        warnings += [f"{current.get('name')} uses no {kind} {n!r}: --{kind}-rm {n} ignored" for n in unused]
        out[key] = [n for n in rm if n not in unused]
    return out, warnings
