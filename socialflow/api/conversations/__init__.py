"""Conversations: the runs waiting for a contact's answer, and the workspace's global keywords."""
