"""The one error tree of p2porch (design.md §6).

Every error a user can see derives from :class:`P2POrchError`. Errors that concern one
input carry the name of the offending ``field`` so the CLI and the API can name it.
"""

from __future__ import annotations


class P2POrchError(Exception):
    """Base of every p2porch error; ``field`` names the offending input when there is one."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        return {"error": type(self).__name__, "message": self.message, "field": self.field}


class ConfigError(P2POrchError):
    """An invalid configuration value, CLI flag or spec; ``field`` names the key."""


class DaemonError(P2POrchError):
    """The daemon cannot start or cannot be reached (lock held, socket missing, ...)."""


class WireError(P2POrchError):
    """Bytes from the network could not be decoded into a valid message."""


class AuthError(P2POrchError):
    """A peer failed authentication (wrong token, bad MAC)."""


class RaftError(P2POrchError):
    """The replicated state log refused or failed an operation."""


class NotLeaderError(RaftError):
    """This node is not the Raft leader; ``leader`` is the leader's address if known."""

    def __init__(self, message: str, *, leader: str | None = None) -> None:
        super().__init__(message)
        self.leader = leader


class ProposalTimeout(RaftError):
    """A proposal was not committed in time; it may or may not commit later."""


class ConflictError(RaftError):
    """A conditional write's expected version did not match the committed state."""


class NotFoundError(P2POrchError):
    """A named object (node, service, task) does not exist."""


class Unschedulable(P2POrchError):
    """No node can take a task; ``explanation`` counts which filter rejected how many nodes."""

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation


class OverlayError(P2POrchError):
    """Programming the VXLAN overlay in the kernel failed."""


class ExecutorError(P2POrchError):
    """The container engine failed to run or inspect a task."""


class SandboxError(P2POrchError):
    """The multi-host sandbox cannot be brought up or torn down."""
