"""One thread of its own that runs calls one at a time, for a pyroute2 socket's owner (shell).

pyroute2's synchronous API keeps its asyncio loop and transport in the thread that opened the socket and
sets up and tears down a new loop for every request made from any other thread (docs/performance.md,
"Joins, ninth round"), so the socket's owner opens and uses it on one such thread. Owns that thread only:
``stop`` runs a last call on it (closing the socket) and ends it; the next ``run`` starts a new one. It
never touches the socket itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class OwnThread:
    """Runs calls in order on one thread, started on first use (blocking: the caller waits)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()  # guards ``_executor``
        self._executor: ThreadPoolExecutor | None = None

    def run(self, call: Callable[[], T]) -> T:
        """``call()`` on the thread; its result or its exception."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
            executor = self._executor
        return executor.submit(call).result()

    def stop(self, last: Callable[[], object]) -> None:
        """Run ``last`` on the thread, then end it (nothing when it is not running)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            try:
                executor.submit(last).result()
            finally:
                executor.shutdown(wait=True)
