"""StemeDB client layer."""
