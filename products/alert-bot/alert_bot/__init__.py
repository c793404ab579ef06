"""Alert Bot: watches web pages, feeds and JSON APIs and alerts subscribed chats once per event."""
