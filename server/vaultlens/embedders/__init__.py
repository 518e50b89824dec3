"""Text and images in, vectors in one space out: one Embedder seam (base.py), its backends, and
the registry that picks one by name."""
