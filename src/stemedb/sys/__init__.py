"""StemeDB sys layer."""
