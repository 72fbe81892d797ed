"""Wenda's query side: turn a question into cited passages from the stored index."""
