"""Live events over websocket."""
