"""The CRM store: the system of record of the customer-care assistant (see README.md)."""
