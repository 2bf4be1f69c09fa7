"""The API's routes, one resource per module, with module-level handlers."""
