"""Posts of the content calendar, their media, and the signed media links Meta fetches."""
