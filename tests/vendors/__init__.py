"""Local fakes of vendor job APIs, written from each vendor's public API documentation."""
