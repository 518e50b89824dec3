"""Files, markdown, placements (Obsidian's embeds) and links: a vault folder in; notes, and the
paragraphs around each placed image or PDF, out."""
