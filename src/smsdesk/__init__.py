"""smsdesk: a self-hosted SMS service for customer-service teams."""

__version__ = "0.1.0"
