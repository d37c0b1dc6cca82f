"""workspaces domain of the API."""
