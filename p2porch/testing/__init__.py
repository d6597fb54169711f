"""p2porch.testing"""
