"""pyroute2's ``IPRoute`` and ``NetlinkError`` without pyroute2's package ``__init__`` (import plumbing).

pyroute2 0.9's ``pyroute2/__init__.py`` imports the whole library (IPDB, NDB, ipset, nl80211, plan9,
... 163 modules, ~9 MB of an idle daemon's RSS); the overlay driver needs the rtnetlink socket only,
and pyroute2 has no switch for it (upstream issue svinota/pyroute2#1404). When nothing has imported
``pyroute2`` yet, :func:`load` registers the package module unexecuted (same spec and search path) with
a module ``__getattr__`` that runs the real ``__init__`` the first time a top-level name is asked for,
then imports only ``pyroute2.iproute`` and ``pyroute2.netlink.exceptions``. So ``from pyroute2 import X``
anywhere later still gets X (at the old cost, once). Owns nothing else; never patches pyroute2 itself.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from types import ModuleType
from typing import Any

PACKAGE = "pyroute2"
_full_init_lock = threading.RLock()  # re-entered if the real __init__ looks up its own names


def _register_unexecuted_package() -> None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.loader is None:
        raise ImportError(f"{PACKAGE} is not installed")
    package = importlib.util.module_from_spec(spec)
    loaded = False

    def full_init(name: str) -> Any:
        """Module ``__getattr__``: a submodule name is the import system's business (AttributeError lets it
        import the submodule); any other public name runs the real ``__init__`` once, then is looked up."""
        nonlocal loaded
        if name.startswith("__") or importlib.util.find_spec(f"{PACKAGE}.{name}") is not None:
            raise AttributeError(name)
        with _full_init_lock:
            if not loaded:
                loaded = True  # set first: the real __init__ may look names up in its own package
                assert spec is not None and spec.loader is not None
                try:
                    spec.loader.exec_module(package)
                except BaseException:
                    loaded = False  # the next lookup tries again and raises the real error
                    raise
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}") from None

    package.__getattr__ = full_init  # type: ignore[method-assign]
    sys.modules[PACKAGE] = package


def load() -> tuple[type[Any], type[Exception]]:
    """``(IPRoute, NetlinkError)``: the same classes ``from pyroute2 import IPRoute`` gives."""
    if PACKAGE not in sys.modules:
        _register_unexecuted_package()
    iproute: ModuleType = importlib.import_module(f"{PACKAGE}.iproute")
    exceptions: ModuleType = importlib.import_module(f"{PACKAGE}.netlink.exceptions")
    return iproute.IPRoute, exceptions.NetlinkError
