"""Observed task states as the orchestrator and the job controller read them (pure constants)."""

from __future__ import annotations

#: observed states after which a container no longer runs
TERMINAL_STATES = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned"})
#: observed states counted as a failure by restart condition on-failure (``complete`` is success)
FAILURE_STATES = frozenset({"failed", "shutdown", "rejected", "orphaned"})
