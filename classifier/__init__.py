"""Scores posts for sentiment, complaint and urgency, with reasons a person can read."""
