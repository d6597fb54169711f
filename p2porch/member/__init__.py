"""p2porch.member."""
