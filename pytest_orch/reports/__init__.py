"""Reports: they read results and never run tasks."""
