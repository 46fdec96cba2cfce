"""Loaded with `pytest -p` before pytest-django reads the settings: the test run's
environment defaults. DATABASE_URL is left alone so the same suite runs on PostgreSQL."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-used-anywhere-else-0123456789")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("BASE_URL", "http://testserver")
os.environ.setdefault("PAYMENTS_SANDBOX", "1")
os.environ.setdefault("TASKS_IMMEDIATE", "1")
os.environ.setdefault("BUSINESS_NAME", "Harbour Build Co")
