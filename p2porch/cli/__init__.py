"""The ``p2porch`` command line (shell): one module per noun, talking to a daemon through the control API."""

from .main import build_parser, load_daemon_config, main

__all__ = ["build_parser", "load_daemon_config", "main"]
