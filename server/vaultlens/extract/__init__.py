"""Pixels, OCR and PDF pages: files in; documents (text and images) ready to embed out."""
