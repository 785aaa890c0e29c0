"""The webhook receiver (`escucha webhooks`): signed deliveries from X and Facebook into the store, exactly once."""
