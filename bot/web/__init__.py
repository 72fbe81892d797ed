"""`wenda serve`: the HTTP front end (native JSON API, OpenAI-compatible chat, Dify retrieval, web page)."""
