"""The event log: every stored inbound event of a workspace and what became of it."""
