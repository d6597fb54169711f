"""pyroute2's ``IPRoute``, ``IPBatch``, ``IPSet``, ``NetlinkError`` without its package ``__init__``.

pyroute2 0.9's ``pyroute2/__init__.py`` imports the whole library (IPDB, NDB, ipset, nl80211, plan9,
... 163 modules, ~9 MB of an idle daemon's RSS); the overlay driver needs the rtnetlink socket only,
and pyroute2 has no switch for it (upstream issue svinota/pyroute2#1404). When nothing has imported
``pyroute2`` yet, :func:`load` registers the package module unexecuted (:mod:`p2porch.lazyimport`: the
real ``__init__`` runs the first time a top-level name is asked for), then imports only
``pyroute2.iproute`` and ``pyroute2.netlink.exceptions`` (and, for :func:`load_batch`, ``pyroute2.netns``,
which ``pyroute2.iproute`` already loaded; :func:`load_ipset` adds ``pyroute2.ipset``, 3 modules more).
So ``from pyroute2 import X`` anywhere later
still gets X (at the old cost, once). ``pyroute2.netlink.rtnl.iprsocket`` imports ``unittest.mock`` (for
its mock mode): ``unittest`` is registered the same way, so its test runner (``unittest.case`` with
``difflib``, ``pprint``, ...; ~0.6 MB) is not loaded. ``pyroute2.iproute.linux`` imports the traffic
control messages (``pyroute2.netlink.rtnl.tcmsg``), whose ``__init__`` imports each queueing discipline's
and classifier's module (``sched_*``, ``cls_*``, with their actions and ematches) only to file them in its
``plugins`` table: p2porch sends no ``tc`` request, so those are registered unexecuted (~0.6 MB, issue 19,
twenty-second round) and a module runs on its first name asked for (a ``tc`` request of that kind).
Owns nothing else; never patches pyroute2 itself.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType
from typing import Any

from ..lazyimport import register_unexecuted, register_unexecuted_module

PACKAGE = "pyroute2"
#: unittest's submodules that ``unittest.mock`` needs; ``unittest.main`` is also a name its __init__
#: re-exports (the function), so only these skip the real __init__
UNITTEST_SUBMODULES = ("mock", "util")
#: the traffic control package whose per-kind modules are registered unexecuted, and their name prefixes
TC_PACKAGE = f"{PACKAGE}.netlink.rtnl.tcmsg"
TC_KIND_PREFIXES = ("sched_", "cls_")


def load() -> tuple[type[Any], type[Exception]]:
    """``(IPRoute, NetlinkError)``: the same classes ``from pyroute2 import IPRoute`` gives."""
    register_unexecuted("unittest", UNITTEST_SUBMODULES)
    register_unexecuted(PACKAGE)
    _register_tc_kinds_unexecuted()
    iproute: ModuleType = importlib.import_module(f"{PACKAGE}.iproute")
    exceptions: ModuleType = importlib.import_module(f"{PACKAGE}.netlink.exceptions")
    return iproute.IPRoute, exceptions.NetlinkError


def _register_tc_kinds_unexecuted() -> None:
    """The traffic control package unexecuted, then each of its ``sched_*``/``cls_*`` modules (its
    ``__init__``, run by the first name asked of it, then only binds them); nothing when it has run."""
    if not register_unexecuted(TC_PACKAGE):
        return
    package = importlib.import_module(TC_PACKAGE)  # the unexecuted module: its search path, nothing run
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith(TC_KIND_PREFIXES):
            register_unexecuted_module(f"{TC_PACKAGE}.{info.name}")


def load_batch() -> tuple[type[Any], Any]:
    """``(IPBatch, create_socket)``: pyroute2's request compiler (``from pyroute2 import IPBatch``) and
    ``pyroute2.netns.create_socket`` (a socket opened in a named network namespace)."""
    load()  # pyroute2 registered unexecuted first
    linux: ModuleType = importlib.import_module(f"{PACKAGE}.iproute.linux")
    netns: ModuleType = importlib.import_module(f"{PACKAGE}.netns")
    return linux.IPBatch, netns.create_socket


def load_conntrack() -> tuple[type[Any], type[Any], type[Exception], type[Any]]:
    """``(Conntrack, NFCTAttrTuple, NetlinkError, ConntrackEntry)`` from ``pyroute2.conntrack`` (its
    conntrack netlink socket; an entry as its dumps give it), pyroute2 registered unexecuted first."""
    _, netlink_error = load()
    conntrack: ModuleType = importlib.import_module(f"{PACKAGE}.conntrack")
    return conntrack.Conntrack, conntrack.NFCTAttrTuple, netlink_error, conntrack.ConntrackEntry


def load_ipset() -> tuple[type[Any], Any]:
    """``(IPSet, setns)``: pyroute2's ipset socket (``from pyroute2.ipset import IPSet``) and
    ``pyroute2.netns.setns`` (moves the calling thread into a named network namespace)."""
    load()  # pyroute2 registered unexecuted first
    ipset: ModuleType = importlib.import_module(f"{PACKAGE}.ipset")
    netns: ModuleType = importlib.import_module(f"{PACKAGE}.netns")
    return ipset.IPSet, netns.setns


def load_ipset_error() -> Callable[..., Exception]:
    """pyroute2's ``_IPSetError``: built from an ipset error code (>= 4096 are ipset's own: ``"An IPv4
    address is expected, ..."``, where ``os.strerror`` says ``"Unknown error 4109"``) and the command
    (``cmd=``), it carries ipset's text as its second argument (``os.strerror``'s for any other code)."""
    load()  # pyroute2 registered unexecuted first
    ipset: ModuleType = importlib.import_module(f"{PACKAGE}.ipset")
    error: Callable[..., Exception] = ipset._IPSetError
    return error
