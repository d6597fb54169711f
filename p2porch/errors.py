"""The one error tree of p2porch and its registry (design.md §6).

Every error a user can see derives from :class:`P2POrchError`. Errors that concern one
input carry the name of the offending ``field`` so the CLI and the API can name it. Each class has
the HTTP status the API answers it with; ``REGISTRY`` maps names to classes and is the only
name-to-error table: the API server writes ``to_dict()``, the API client and the Raft result reader
rebuild the same error with :func:`error_from_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class P2POrchError(Exception):
    """Base of every p2porch error; ``field`` names the offending input when there is one."""

    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, "field": self.field}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> P2POrchError:
        """Rebuild from :meth:`to_dict` output (subclasses with extra fields override)."""
        field = data.get("field")
        return cls(_message(data), field=field if isinstance(field, str) else None)


class ConfigError(P2POrchError):
    """An invalid configuration value, CLI flag or spec; ``field`` names the key."""

    http_status = 400


class NotAllowedError(P2POrchError):
    """A change Swarm refuses to make to an existing object (a service's mode): a well-formed request
    the cluster will not carry out, so 400 from the API but exit 1 (a refused operation) from the CLI."""

    http_status = 400


class DaemonError(P2POrchError):
    """The daemon cannot start or cannot be reached (lock held, socket missing, ...)."""

    http_status = 503


class DaemonUnreachable(DaemonError):
    """Nothing answers on the daemon's socket (missing, refused): the request was not sent."""


class WireError(P2POrchError):
    """Bytes from the network could not be decoded into a valid message."""

    http_status = 422


class AuthError(P2POrchError):
    """A peer failed authentication (wrong token, bad MAC)."""

    http_status = 422


class RaftError(P2POrchError):
    """The replicated state log refused or failed an operation."""

    http_status = 422


class NotLeaderError(RaftError):
    """This node is not the Raft leader; ``leader`` is the leader's address if known."""

    http_status = 503

    def __init__(self, message: str, *, leader: str | None = None) -> None:
        super().__init__(message)
        self.leader = leader

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "leader": self.leader}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NotLeaderError:
        leader = data.get("leader")
        return cls(_message(data), leader=leader if isinstance(leader, str) else None)


class ProposalTimeout(RaftError):
    """A proposal was not committed in time; it may or may not commit later. ``base_spec``: for a service
    update, the digest of the spec it was computed against, and ``base_previous`` of the rollback point
    it read, which a retry sends (model/update_sequence.py)."""

    http_status = 504

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        base_spec: str | None = None,
        base_previous: str | None = None,
    ) -> None:
        super().__init__(message, field=field)
        self.base_spec = base_spec
        self.base_previous = base_previous

    def to_dict(self) -> dict[str, Any]:
        bases = {"base_spec": self.base_spec, "base_previous": self.base_previous}
        return {**super().to_dict(), **{k: v for k, v in bases.items() if v}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProposalTimeout:
        field, base, previous = data.get("field"), data.get("base_spec"), data.get("base_previous")
        return cls(
            _message(data),
            field=field if isinstance(field, str) else None,
            base_spec=base if isinstance(base, str) else None,
            base_previous=previous if isinstance(previous, str) else None,
        )


class StaleReadRefused(RaftError):
    """A read this node could not prove current (its read barrier: no leader confirmed a commit index it
    then applied, in time); answered instead of a possibly stale copy (``control/read_barrier.py``)."""

    http_status = 503


class ConflictError(RaftError):
    """A conditional write's expected version did not match the committed state."""

    http_status = 409


class NotFoundError(P2POrchError):
    """A named object (node, service, task) does not exist."""

    http_status = 404


#: how every "no such object" message begins (Docker's ``Error: No such service: web``): the CLI prints a
#: NotFoundError so worded as Docker's CLI does (``cli.util.error_line``)
NO_SUCH = "No such "
#: Docker's words for a stack with nothing in it (``stack ps``), printed as they are
NOTHING_IN_STACK = "nothing found in stack: "


def no_such(kind: str, ref: str, *, field: str | None = None) -> NotFoundError:
    """The one error for a missing service/node/task/secret/config/network named ``ref``, in Docker's
    words: ``No such service: web`` (``kind`` ``service``; ``task or service`` for a logs target)."""
    return NotFoundError(f"{NO_SUCH}{kind}: {ref}", field=field)


class Unschedulable(P2POrchError):
    """No node can take a task; ``explanation`` counts which filter rejected how many nodes."""

    http_status = 422

    def __init__(self, explanation: str) -> None:
        super().__init__(explanation)
        self.explanation = explanation

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Unschedulable:
        return cls(_message(data))


class OverlayError(P2POrchError):
    """Programming the VXLAN overlay in the kernel failed."""

    http_status = 422


class ExecutorError(P2POrchError):
    """The container engine failed to run or inspect a task."""

    http_status = 422


class SandboxError(P2POrchError):
    """The multi-host sandbox cannot be brought up or torn down."""

    http_status = 422


def _message(data: Mapping[str, Any]) -> str:
    return str(data.get("message") or data.get("error") or "unknown error")


def _subclasses(cls: type[P2POrchError]) -> list[type[P2POrchError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


#: every error class by name: the one table the API server, the API client and Raft results share
REGISTRY: dict[str, type[P2POrchError]] = {c.__name__: c for c in _subclasses(P2POrchError)}


def error_class(name: str, *, default: type[P2POrchError] = P2POrchError) -> type[P2POrchError]:
    return REGISTRY.get(name, default)


def error_from_dict(data: Mapping[str, Any], *, default: type[P2POrchError] = P2POrchError) -> P2POrchError:
    """The error a ``to_dict()`` map stands for; unknown names become ``default``."""
    return error_class(str(data.get("error", "")), default=default).from_dict(data)
