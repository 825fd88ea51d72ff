"""Built-in task handlers. Installed as ``pytest_orch.handlers`` (see pyproject.toml)."""
