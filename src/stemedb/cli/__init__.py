"""StemeDB cli layer."""
