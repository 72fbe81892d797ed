"""Wenda's indexing package: read a corpus, chunk it with citations, embed it and store a FAISS index."""
