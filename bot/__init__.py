"""Wenda's front ends: the command line (`wenda`) and, later, the Telegram bot."""
