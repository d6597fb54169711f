"""p2porch.membership."""
