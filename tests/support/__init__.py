"""Helpers shared by test directories (on sys.path through pytest's pythonpath)."""
