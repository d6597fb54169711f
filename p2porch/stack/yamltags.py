"""The values and limits of Compose YAML that the rest of ``p2porch.stack`` uses (pure; no PyYAML).

Owns the ``!reset`` / ``!override`` tag values and the limits a Compose text is read within. Kept apart
from the loader (``yamlloader``) so that importing the stack's model does not import PyYAML: a daemon
loads it only when it parses a Compose file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_TEXT_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 10_000
MAX_EXPANDED_NODES = 200_000


class Reset:
    """The value of a ``!reset`` tag: the key is removed from what an earlier file set."""

    def __repr__(self) -> str:
        return "!reset"


RESET = Reset()


@dataclass(frozen=True)
class Override:
    """The value of an ``!override`` tag: replaces what an earlier file set instead of merging with it."""

    value: Any
