"""Root conftest: nothing the tests need lives here (see tests/conftest.py)."""
