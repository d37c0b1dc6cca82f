"""Contacts of a workspace: list, filter, profile with timeline, tags and fields, bulk tagging,
CSV export and erasure."""
