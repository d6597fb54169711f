"""The Go template engine's errors, apart from the engine (model/gotemplate*.py) so that a caller can
name and catch them without loading it: an idle daemon never runs a template (issue 19, "The
twenty-ninth round"). Owns the three classes only.
"""

from __future__ import annotations

__all__ = ["ExecError", "ParseError", "TemplateError"]


class TemplateError(ValueError):
    """A template Go would refuse: ``str()`` is Go's message; ``detail`` the part after the location and
    node, never quoting the template's text or a value it printed (a payload's may be secret)."""

    def __init__(self, message: str, detail: str, line: int, column: int | None = None) -> None:
        super().__init__(message)
        self.detail, self.line, self.column = detail, line, column


class ParseError(TemplateError):
    """``template: NAME:LINE: DETAIL``."""


class ExecError(TemplateError):
    """``template: NAME:LINE:COL: executing "NAME" at <NODE>: DETAIL``."""
