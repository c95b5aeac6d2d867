"""Kafka plumbing: the local broker, readers, security, topics, admin, lag, dead letters, replay."""
