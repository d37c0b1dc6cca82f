"""credentials domain of the API."""
