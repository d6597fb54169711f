"""p2porch.leader."""
