"""The change feed's machinery: the commit-listener hub and Server-Sent Events."""
