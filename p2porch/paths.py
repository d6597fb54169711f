"""This machine's default daemon socket and data directory (base; no imports).

Apart from :mod:`p2porch.config` so the command line names the socket without importing the config
(its dataclasses and TOML parser cost a local command ~40-90 ms of start-up, docs/performance.md).
"""

DEFAULT_SOCKET = "/run/p2porch/p2porch.sock"
DEFAULT_DATA_DIR = "/var/lib/p2porch"
