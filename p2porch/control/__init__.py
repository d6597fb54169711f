"""p2porch.control."""
