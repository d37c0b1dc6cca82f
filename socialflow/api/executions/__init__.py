"""executions domain of the API."""
