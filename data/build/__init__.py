"""allypot package."""
