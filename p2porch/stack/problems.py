"""Collecting every problem of a Compose file in one pass (pure).

``Problems`` owns the errors and warnings found while loading a stack: loaders record an error and go
on with the next key, so one run reports everything; warnings (ignored keys, unset variables) are kept
once each, in order. ``ComposeError`` is the one error type the loader raises: a ``ConfigError`` whose
``problems`` are every error found (its ``field`` is the first one's).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import ConfigError

#: at most this many errors are kept (a broken file can produce one per value)
MAX_ERRORS = 200


class ComposeError(ConfigError):
    """Every error of a Compose file; ``message`` has one line per error."""

    def __init__(self, problems: list[ConfigError], warnings: list[str] | None = None) -> None:
        lines = [p.message for p in problems]
        super().__init__("\n".join(lines), field=problems[0].field if problems else None)
        self.problems = tuple(problems)
        self.warnings = tuple(warnings or ())

    def to_dict(self) -> dict[str, str | None]:
        return {**super().to_dict(), "errors": "\n".join(p.message for p in self.problems)}


class Problems:
    """Errors and warnings of one load; never raises until :meth:`raise_if_any`."""

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []
        self.warnings: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.add(ConfigError(f"{path}: {message}", field=path))

    def add(self, exc: ConfigError) -> None:
        if isinstance(exc, ComposeError):
            for problem in exc.problems:
                self.add(problem)
            return
        if len(self.errors) >= MAX_ERRORS:
            return
        # one error per key path: the first is the cause (a value whose interpolation failed is kept as
        # written, e.g. '${IMG:?set IMG}', and would fail its own check next: not a second problem)
        if all(e.message != exc.message and (exc.field is None or e.field != exc.field) for e in self.errors):
            self.errors.append(exc)

    def warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    @contextmanager
    def check(self) -> Iterator[None]:
        """Record a ConfigError raised inside the block instead of propagating it."""
        try:
            yield
        except ConfigError as exc:
            self.add(exc)

    def raise_if_any(self) -> None:
        if self.errors:
            raise ComposeError(list(self.errors), self.warnings)
