"""Reading a stack's files on the CLI's machine (shell: file I/O only).

Owns turning ``-c FILE...``, ``--env-file`` and the CLI's environment into what ``load_stack`` needs:
the Compose files' texts and directories, the interpolation environment (the ``.env`` beside the first
file, or ``--env-file``, under the process environment, as Compose does), the active profiles
(``--profile`` and ``COMPOSE_PROFILES``) and a reader for the files they name (``env_file``, ``extends``).
Every file is read with ``boundedread`` (a size limit, strict UTF-8); an encoding problem is a
``ConfigError`` naming the file and the line. It never talks to a daemon.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from ..boundedread import NotUtf8Error, TooLargeError, decode_utf8, read_bounded
from ..errors import ConfigError
from .compose import StackDefinition, load_stack
from .interpolate import parse_dotenv
from .resolve import ComposeFile
from .yamlsafe import MAX_TEXT_BYTES


def read_text(path: str, what: str = "file") -> str:
    """A file's text: at most MAX_TEXT_BYTES, UTF-8 (a BOM is skipped); errors name the file and line.

    Raises OSError when the file cannot be opened (the caller says which key named it), a path holding
    a NUL byte too (``open`` raises ValueError for it)."""
    if "\0" in path:
        raise OSError(errno.EINVAL, "a path cannot hold a NUL byte", path)
    return _decoded(path, path, what)


def _decoded(source: str | BinaryIO, path: str, what: str) -> str:
    try:
        data = read_bounded(source, MAX_TEXT_BYTES)
    except TooLargeError:
        raise ConfigError(f"{path}: the {what} is larger than {MAX_TEXT_BYTES} bytes") from None
    try:
        return decode_utf8(data)
    except NotUtf8Error as exc:
        raise ConfigError(
            f"{path} line {exc.line}: the {what} is not valid UTF-8 "
            f"(byte 0x{exc.byte:02x} at offset {exc.offset})"
        ) from None


@dataclass(frozen=True)
class StackSource:
    """Everything a stack load needs from the CLI's machine."""

    files: tuple[ComposeFile, ...]
    environ: Mapping[str, str]
    profiles: tuple[str, ...]

    def load(self, stack: str) -> StackDefinition:
        """The validated stack (raises ComposeError listing every problem)."""

        def read_file(path: str) -> str:
            return read_text(path)

        return load_stack(stack, self.files, read_file, environ=self.environ, profiles=self.profiles)


def stack_source(
    paths: Sequence[str],
    env_file: str | None = None,
    profiles: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    stdin: BinaryIO | None = None,
) -> StackSource:
    """Read ``paths`` (``-``: standard input, once, its relative paths from the working directory, as
    Docker's ``--compose-file -``), the env file and the profiles.

    Raises ConfigError(field="-c"/"--env-file") for a file that cannot be read."""
    environ = dict(os.environ if environ is None else environ)
    if list(paths).count("-") > 1:
        raise ConfigError("-c -: standard input can be given once", field="-c")
    files = []
    for path in paths:
        try:
            if path == "-":
                text = _decoded(stdin or sys.stdin.buffer, "-", "Compose file")
            else:
                text = read_text(path, "Compose file")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(f"-c {path}: cannot read the Compose file: {reason}", field="-c") from None
        except ConfigError as exc:
            raise ConfigError(exc.message, field="-c") from None
        base_dir = os.getcwd() if path == "-" else os.path.dirname(os.path.abspath(path))
        files.append(ComposeFile(path, text, base_dir))
    if not files:
        raise ConfigError("-c: at least one Compose file is required", field="-c")
    dotenv_path = env_file or os.path.join(files[0].base_dir, ".env")
    dotenv: dict[str, str] = {}
    try:
        dotenv = parse_dotenv(read_text(dotenv_path, "env file"), dotenv_path, environ)
    except FileNotFoundError:
        if env_file is not None:
            raise ConfigError(f"--env-file {env_file}: no such file", field="--env-file") from None
    except IsADirectoryError:
        pass
    except OSError as exc:
        raise ConfigError(f"{dotenv_path}: cannot read: {exc.strerror or exc}", field="--env-file") from None
    except ConfigError as exc:
        raise ConfigError(exc.message, field="--env-file") from None
    merged = {**dotenv, **environ}  # the process environment wins over .env, as in Compose
    # --profile, or else COMPOSE_PROFILES (docker compose's WithDefaultProfiles: the variable is only the
    # default, never added to the profiles the command line names)
    active = [p for p in profiles if p] or [
        p.strip() for p in merged.get("COMPOSE_PROFILES", "").split(",") if p.strip()
    ]
    return StackSource(tuple(files), merged, tuple(dict.fromkeys(active)))
