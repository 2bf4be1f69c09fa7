"""StemeDB ops layer."""
