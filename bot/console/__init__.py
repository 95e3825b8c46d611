"""The staff console: agents work handed-over conversations; managers read the dashboard."""
