"""flows domain of the API."""
