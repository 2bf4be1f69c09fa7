"""StemeDB lens layer."""
