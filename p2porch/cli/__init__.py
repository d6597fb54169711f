"""The ``p2porch`` command line (shell): one module per noun, talking to a daemon through the control API."""

from .daemon import load_daemon_config
from .main import build_parser, main

__all__ = ["build_parser", "load_daemon_config", "main"]
