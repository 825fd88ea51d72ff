"""pytest-orch: run a YAML plan of phases, groups and tasks as a pytest session."""

__version__ = "0.1.0"
