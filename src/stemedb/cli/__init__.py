"""The stemedb command line."""
