"""The store contract: what every ``stemedb.store.protocol.Store`` implementation does."""
