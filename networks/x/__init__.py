"""networks.x."""
