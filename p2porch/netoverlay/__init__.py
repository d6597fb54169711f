"""p2porch.netoverlay"""
