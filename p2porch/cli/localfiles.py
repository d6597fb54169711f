"""Small files a flag names on the CLI's machine (tokens, CA bundles, env files, the daemon's config).

Owns the flags' limits and errors: each file is read with ``boundedread`` (at most ``limit`` bytes, so
``/dev/zero``, a FIFO fed forever or a huge file costs a bounded read); a path the OS refuses
(missing, a symlink loop, a NUL byte) or text that is not UTF-8 is a ConfigError naming the flag
(exit 2). It never writes anything (and imports nothing of the CLI: context_store uses it).
"""

from __future__ import annotations

from ..boundedread import NotUtf8Error, TooLargeError, decode_utf8, read_bounded
from ..errors import ConfigError

TOKEN_FILE_BYTES = 64 * 1024  # an access or join token is under 200 bytes
CA_FILE_BYTES = 4 * 1024 * 1024  # a CA bundle (a system one is ~200 KiB)
TEXT_FILE_BYTES = 4 * 1024 * 1024  # an env file, the daemon's TOML config (as the Compose file's limit)


def shown(path: str) -> str:
    """``path`` as an error prints it: quoted when it holds a control character (a NUL, a newline)."""
    return path if path.isprintable() else repr(path)


def read_flag_bytes(path: str, flag: str, limit: int) -> bytes:
    """The bytes of ``path`` (``flag`` names it in errors), at most ``limit``."""
    try:
        return read_bounded(path, limit)
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot read {shown(path)}: {exc.strerror or exc}", field=flag) from None
    except ValueError:  # open() refuses a path holding a NUL byte
        raise ConfigError(
            f"{flag}: cannot read {shown(path)}: a path cannot hold a NUL byte", field=flag
        ) from None
    except TooLargeError:
        raise ConfigError(
            f"{flag}: cannot read {shown(path)}: the file is larger than {limit} bytes", field=flag
        ) from None


def read_flag_text(path: str, flag: str, limit: int = TEXT_FILE_BYTES) -> str:
    """The UTF-8 text of ``path`` (a BOM skipped), at most ``limit`` bytes."""
    data = read_flag_bytes(path, flag, limit)
    try:
        return decode_utf8(data)
    except NotUtf8Error as exc:
        raise ConfigError(
            f"{flag}: cannot read {shown(path)}: line {exc.line} is not UTF-8 (byte 0x{exc.byte:02x})",
            field=flag,
        ) from None
