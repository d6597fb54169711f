"""A package registered without running its ``__init__`` until a name of it is asked for (import plumbing).

Some libraries' package ``__init__`` imports far more than a daemon uses: pyroute2's imports the whole
library (~9 MB), and ``unittest``'s imports its test runner (``difflib``, ``pprint``, ...; ~0.6 MB)
when pyroute2's rtnetlink socket only wants ``unittest.mock``. :func:`register_unexecuted` puts the
package module in ``sys.modules`` unexecuted (same spec and search path) with a module ``__getattr__``:
the submodules it lets through are left to the import system (``from pyroute2 import iproute``
imports that submodule only); any other name runs the real ``__init__`` once, in that same module
object, and is then looked up. So a later ``from unittest import TestCase`` anywhere gets the real
class (at the old cost, once). Owns nothing else; never patches a library.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Collection
from typing import Any

__all__ = ["register_unexecuted"]

_full_init_lock = threading.RLock()  # re-entered if a real __init__ looks up its own names


def register_unexecuted(package_name: str, submodules: Collection[str] | None = None) -> bool:
    """Register ``package_name`` unexecuted; False (nothing done) when it is imported already.

    ``submodules``: the submodule names left to the import system without the full ``__init__``
    (None: every submodule; give a list when the ``__init__`` re-exports a name that is also a
    submodule, like ``unittest.main``)."""
    if package_name in sys.modules:
        return False
    spec = importlib.util.find_spec(package_name)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        raise ImportError(f"{package_name} is not an installed package")
    package = importlib.util.module_from_spec(spec)
    loaded = False

    def passes(name: str) -> bool:
        if submodules is not None:
            return name in submodules
        return importlib.util.find_spec(f"{package_name}.{name}") is not None

    def full_init(name: str) -> Any:
        """Module ``__getattr__``: a submodule let through is the import system's business
        (AttributeError lets it import the submodule); any other public name runs the real
        ``__init__`` once, then is looked up."""
        nonlocal loaded
        if name.startswith("__") or (not loaded and passes(name)):
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
            raise AttributeError(f"module {package_name!r} has no attribute {name!r}") from None

    package.__getattr__ = full_init  # type: ignore[method-assign]
    sys.modules[package_name] = package
    return True
