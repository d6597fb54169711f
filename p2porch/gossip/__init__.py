"""p2porch.gossip"""
