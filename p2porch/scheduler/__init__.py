"""p2porch.scheduler"""
