"""A package registered without running its ``__init__`` until a name of it is asked for (import plumbing).

Some libraries' package ``__init__`` imports far more than a daemon uses: pyroute2's imports the whole
library (~9 MB), and ``unittest``'s imports its test runner (``difflib``, ``pprint``, ...; ~0.6 MB)
when pyroute2's rtnetlink socket only wants ``unittest.mock``. :func:`register_unexecuted` puts the
package module in ``sys.modules`` unexecuted (same spec and search path) with a module ``__getattr__``:
the submodules it lets through are left to the import system (``from pyroute2 import iproute``
imports that submodule only); any other name runs the real ``__init__`` once, in that same module
object, and is then looked up. So a later ``from unittest import TestCase`` anywhere gets the real
class (at the old cost, once). :func:`register_unexecuted_module` does the same for a plain module that
its importer only binds (``import gzip``, ``from unittest import mock``) and uses later, if ever: the
module runs on the first name asked of it. :data:`DAEMON_ABSENT_MODULES` are marked absent in a daemon
(an ``import`` of them raises ImportError), where the standard library has a fallback for them;
:data:`CLI_UNEXECUTED_MODULES` are registered unexecuted for every other command line. Owns nothing
else; never patches a library.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import threading
from collections.abc import Callable, Collection
from types import ModuleType
from typing import Any

__all__ = [
    "CLI_UNEXECUTED_MODULES",
    "DAEMON_ABSENT_MODULES",
    "DAEMON_UNEXECUTED_MODULES",
    "defer_cli_modules",
    "defer_daemon_modules",
    "register_unexecuted",
    "register_unexecuted_module",
]

#: Modules the daemon's libraries import and only bind at start, which an idle daemon never uses (issue 19,
#: "The idle daemon, tenth round"): the TOML parser (hypercorn's config and p2porch's read a TOML file only
#: when one is given), starlette's cookie jar (``http.cookies``: no p2porch route reads or sets a cookie)
#: and UUID path convertor, ``email``'s date parsing (``calendar``: ``http.client`` parses headers only),
#: pysyncobj's serializer compression (``gzip``: p2porch writes its own snapshots), ``shutil``'s archive
#: formats (``bz2``, ``lzma``, each with its C library) and trio's encoding of non-ASCII host names
#: (``idna``: p2porch resolves addresses and ASCII names). ~0.4 MB with the modules they import. And the
#: HTTP/2 stack (issue 19, eleventh round): ``hypercorn.protocol.h2`` imports ``h2`` (its ``connection``,
#: ``events`` and ``exceptions``) and ``priority`` and reads them only in its methods; both APIs speak
#: HTTP/1.1 (the TLS one offers only ``http/1.1`` in ALPN), so they run, with ``hpack``, only when a
#: client opens an HTTP/2 connection (prior knowledge or an ``h2c`` upgrade). ~1.2 MB. And ``logging``'s
#: handlers (issue 19, twenty-second round): hypercorn imports ``logging.config``, which binds
#: ``logging.handlers`` and reads it only when a configuration names one of its handlers; p2porch logs
#: to stderr (``logging.StreamHandler``). ~0.2 MB.
DAEMON_UNEXECUTED_MODULES = (
    "tomllib",
    "http.cookies",
    "calendar",
    "gzip",
    "bz2",
    "lzma",
    "idna",
    "h2",
    "h2.connection",
    "h2.events",
    "h2.exceptions",
    "priority",
    "logging.handlers",
)

#: Modules a command line's imports only bind, which a command talking to a local daemon never runs (issue 19,
#: "The thirty-second round: the `p2porch join` CLI's start"): ``ssl`` (``http.client`` imports it for its
#: HTTPS class; OpenSSL's initialisation ~8 ms of CPU; a ``tcp://`` host's httpx runs it on first use),
#: ``shutil``'s archive formats (``bz2``, ``lzma``: argparse's help formatter imports ``shutil``), and
#: ``email``'s date parsing and message ids (``calendar``, ``random``: ``http.client`` parses headers only).
CLI_UNEXECUTED_MODULES = ("ssl", "bz2", "lzma", "calendar", "random")

#: Modules a daemon runs without (issue 19, "The twenty-ninth round"): ``_hashlib``, OpenSSL's hashes,
#: whose init fetches every digest OpenSSL has (~0.5 MB over what ``_ssl``, which the daemon needs, costs).
#: ``hashlib`` and ``hmac`` fall back to CPython's own SHA-1/SHA-2/SHA-3/MD5 (BLAKE2 is CPython's own in
#: any case) and ``_operator``'s constant-time ``compare_digest``: every hash p2porch and the daemon's
#: libraries use (sha256, blake2b, HMAC-SHA256; starlette's md5, wsproto's sha1), same digests. Not there
#: in a daemon: OpenSSL-only names (``hashlib.new("sha512_256")``, ``ripemd160``) and ``hashlib.scrypt``.
#: Only where this Python has those built in: a build limited to some (``--with-builtin-hashlib-hashes``,
#: RHEL/FIPS) keeps ``_hashlib``, else ``hashlib.sha256`` would be missing.
DAEMON_ABSENT_MODULES = ("_hashlib",)
#: CPython's own hash modules ``hashlib`` falls back to without ``_hashlib``: per hash, its ways (each a set
#: of modules all present). 3.12 merged _sha256 and _sha512 into _sha2; 3.11 has both of those instead.
BUILTIN_HASH_MODULES: tuple[tuple[tuple[str, ...], ...], ...] = (
    (("_md5",),),
    (("_sha1",),),
    (("_sha2",), ("_sha256", "_sha512")),
    (("_blake2",),),
)


def builtin_hashes_present(find: Callable[[str], object | None] | None = None) -> bool:
    """Whether this Python has every hash of ``BUILTIN_HASH_MODULES`` (all the modules of one of its
    ways); ``find``: ``importlib.util.find_spec`` unless given."""
    look = find or importlib.util.find_spec
    return all(
        any(all(look(name) is not None for name in way) for way in ways) for ways in BUILTIN_HASH_MODULES
    )


_full_init_lock = threading.RLock()  # re-entered if a real __init__ looks up its own names


def defer_daemon_modules(
    names: Collection[str] = DAEMON_UNEXECUTED_MODULES, absent: Collection[str] = DAEMON_ABSENT_MODULES
) -> list[str]:
    """Register ``names`` unexecuted and mark ``absent`` absent, before the daemon's imports (its entry
    point calls this first); returns those registered (a module imported already is left as it is)."""
    if builtin_hashes_present():
        for name in absent:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None: ImportError on import
    return [name for name in names if register_unexecuted_module(name)]


def defer_cli_modules(names: Collection[str] = CLI_UNEXECUTED_MODULES) -> list[str]:
    """Register ``names`` unexecuted before a command's imports (the CLI's entry point calls this first
    for every command but ``daemon``); returns those registered."""
    return [name for name in names if register_unexecuted_module(name)]


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

    def passes(name: str) -> bool:
        if submodules is not None:
            return name in submodules
        return importlib.util.find_spec(f"{package_name}.{name}") is not None

    _register(spec, passes)
    return True


def register_unexecuted_module(module_name: str) -> bool:
    """Register the module ``module_name`` unexecuted; False (nothing done) when it is imported already.
    Its first name asked for (``gzip.GzipFile``, ``__all__`` for a star import) runs it once (a package's
    ``__init__`` likewise: ``tomllib.loads``).

    Only for a module that nothing reads at import time: ``from gzip import GzipFile`` asks for a name,
    so it would run the module at once (correct, but nothing saved). A submodule (``unittest.mock``)
    is also set on its parent package, as the import system does."""
    if module_name in sys.modules:
        return False
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.loader is None:
        raise ImportError(f"{module_name} is not an installed module")
    module = _register(spec, lambda name: False)
    parent, _, child = module_name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return True


def _register(spec: importlib.machinery.ModuleSpec, passes: Callable[[str], bool]) -> ModuleType:
    """Put ``spec``'s module in ``sys.modules`` unexecuted, with a module ``__getattr__`` that runs it
    on the first name asked for that ``passes`` does not let through."""
    module_name = spec.name
    package = importlib.util.module_from_spec(spec)
    loaded = False

    def full_init(name: str) -> Any:
        """Module ``__getattr__``: a submodule let through is the import system's business
        (AttributeError lets it import the submodule); any other public name runs the real
        ``__init__`` once, then is looked up."""
        nonlocal loaded
        if (name.startswith("__") and name != "__all__") or (not loaded and passes(name)):
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
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}") from None

    package.__getattr__ = full_init  # type: ignore[method-assign]
    sys.modules[module_name] = package
    return package
