"""node_types domain of the API."""
