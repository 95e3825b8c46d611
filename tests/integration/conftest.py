"""The session's running system (the `system` fixture) lives in tests/conftest.py, shared with
the browser tests."""
