"""pytest-xdist integration: the DAG scheduler, its ready set, the worker side and worker start.

Imported only when xdist is loaded; what it needs of xdist's internals is in ``pytest_orch.compat``.
"""
