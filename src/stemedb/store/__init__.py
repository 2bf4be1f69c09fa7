"""StemeDB store layer: ``protocol`` (what the layers above use), the implementations
(``sqlite/``, the embedded store), and what they share: ``rows``, ``cache``, ``trust``,
``claim_keys``. ``keys`` is the API-key store (``keys.sqlite``), not derived from the WAL."""
