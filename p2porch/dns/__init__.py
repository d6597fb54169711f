"""p2porch.dns"""
