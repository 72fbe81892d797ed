"""Wenda's front ends: the command line (`wenda`), the Telegram bot (`telegram/`) and the HTTP server (`web/`)."""
