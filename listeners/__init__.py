"""The edge facing the networks: fetchers, senders and the loopback sandbox."""
