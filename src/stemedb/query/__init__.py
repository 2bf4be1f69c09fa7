"""Candidate selection, filters, lens application, caching, views, audit, trace, feed."""
