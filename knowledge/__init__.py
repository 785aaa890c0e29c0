"""The knowledge base: articles and canned answers, past approved answers, and retrieval by meaning."""
