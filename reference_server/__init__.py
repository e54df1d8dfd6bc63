"""The asyncreply reference server for the async request-reply pattern."""
