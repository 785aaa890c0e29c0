"""The responder: assignment, SLA, drafts and the exactly-once outbox."""
