"""asyncreply: a typed sync and async client for the async request-reply pattern."""
