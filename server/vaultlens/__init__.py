"""vaultlens: local search for an Obsidian vault."""
