"""p2porch.cluster: join tokens, the join handshake and cluster membership wiring."""
