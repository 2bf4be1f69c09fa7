"""StemeDB cluster layer."""
