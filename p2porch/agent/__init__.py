"""p2porch.agent"""
