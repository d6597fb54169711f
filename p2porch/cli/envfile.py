"""``--env-file FILE`` of ``service create``, read as Docker reads it (pure but for the file read).

One ``KEY=VALUE`` a line, taken literally (no quotes, no ``$`` expansion); blank lines and lines starting
with ``#`` are skipped; a line with a key alone takes the value from the caller's environment and is
left out when it is not set there. A key with whitespace, a missing or unreadable file: a usage error
naming ``--env-file``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..errors import ConfigError
from .localfiles import read_flag_text
from .util import UsageError


def parse_env_lines(lines: Iterable[str], where: str, environ: Mapping[str, str]) -> list[str]:
    """``K=V`` entries of one env file's lines (``where`` names the file in errors)."""
    out = []
    for number, raw in enumerate(lines, 1):
        line = raw.removeprefix("\ufeff").rstrip("\r\n").lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not key or any(c.isspace() for c in key):
            raise UsageError(
                f"--env-file: {where}:{number}: variable {key!r} is empty or contains whitespace",
                field="--env-file",
            )
        if sep:
            out.append(f"{key}={value}")
        elif key in environ:
            out.append(f"{key}={environ[key]}")
    return out


def with_env_files(from_files: Iterable[str], flags: Iterable[str]) -> list[str]:
    """The files' variables, then ``--env``'s, one entry a key as Docker's container gets them: a later
    file's value replaces an earlier one's, and ``--env`` replaces the files' (the spec refuses a key
    given twice, which stays true of ``--env`` itself)."""
    flags = list(flags)
    given = {entry.partition("=")[0] for entry in flags}
    merged: dict[str, str] = {}
    for entry in from_files:
        key = entry.partition("=")[0]
        if key not in given:
            merged[key] = entry
    return [*merged.values(), *flags]


def read_env_files(paths: Iterable[str], environ: Mapping[str, str]) -> list[str]:
    """Every file's entries in order (a later one wins where the daemon applies the list)."""
    out: list[str] = []
    for path in paths:
        try:
            text = read_flag_text(path, "--env-file")
        except ConfigError as exc:
            raise UsageError(exc.message, field="--env-file") from None
        out += parse_env_lines(text.split("\n"), path, environ)
    return out
