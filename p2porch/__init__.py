"""p2porch: a peer-to-peer, masterless container orchestrator."""

__version__ = "0.1.0"
API_VERSION = "v1"
