"""A Django Channels chat: rooms over WebSocket, messages kept in the database."""
