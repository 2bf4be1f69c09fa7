"""Backups: create, locate, verify and restore them (docs/design/backup-format.md)."""
