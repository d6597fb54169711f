"""p2porch.sandbox"""
