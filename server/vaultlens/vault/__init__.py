"""Files, markdown, embeds and links: a vault folder in; notes, and the paragraphs around each
embedded image or PDF, out."""
