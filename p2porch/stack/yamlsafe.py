"""Compose YAML -> plain Python values, with limits (pure).

Owns reading one YAML document the way Compose does (YAML 1.2 scalars: ``8080:80`` and ``yes`` are
strings; duplicate keys are errors; ``!reset`` and ``!override`` tags of override files) and bounding
what a hostile file can cost: the text size, the nesting depth, the number of aliases, the size of the
document once aliases are expanded, and recursive aliases. Every failure is a ``ConfigError`` naming the
file and line. It never does I/O and never raises anything else for any input text.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .yamltags import MAX_ALIASES, MAX_DEPTH, MAX_EXPANDED_NODES, MAX_TEXT_BYTES, RESET, Override, Reset

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MAX_TEXT_BYTES",
    "RESET",
    "Override",
    "Reset",
    "parse_yaml",
    "parse_yaml_documents",
]


def parse_yaml(text: str, filename: str = "compose") -> Any:
    """Parse one YAML document as Compose does, within the limits above.

    Raises ConfigError(field="compose") naming ``filename`` and the line for invalid or too costly input.
    """
    return _parse(text, filename, multi=False)


def parse_yaml_documents(text: str, filename: str = "compose") -> list[Any]:
    """Every document of a YAML stream (``---`` separated), in order, empty ones left out: a Compose
    file may hold several documents, merged in order like several files (compose-go since 2023).
    The limits apply to the stream as a whole. Raises like :func:`parse_yaml`."""
    return [doc for doc in _parse(text, filename, multi=True) if doc is not None]


def _parse(text: str, filename: str, multi: bool) -> Any:
    if not isinstance(text, str):
        raise ConfigError("compose: expected the Compose file's text", field="compose")
    if len(text) > MAX_TEXT_BYTES:
        raise ConfigError(f"compose: {filename} is larger than {MAX_TEXT_BYTES} bytes", field="compose")
    from .yamlloader import load  # PyYAML only when a Compose text is parsed

    return load(text, filename, multi)
