"""The Telegram front end: the bot, its answers' HTML, settings, conversations, uploads and update journal."""
