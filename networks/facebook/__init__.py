"""networks.facebook."""
