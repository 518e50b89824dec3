"""The stored index: documents in; a crash-safe SQLite catalog and a usearch vector index,
kept in step with the vault, out."""
