"""p2porch.api"""
