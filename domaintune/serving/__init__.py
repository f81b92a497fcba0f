"""Serving the merged model: an intent router with a fallback chain, an OpenAI-compatible HTTP API
(``app``) and a command line (``python -m domaintune.serving``)."""
