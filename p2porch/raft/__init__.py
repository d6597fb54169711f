"""p2porch.raft"""
