"""Instagram: a professional account through the Graph API (comments, mentions, DMs)."""
