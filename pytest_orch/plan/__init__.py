"""Plan files: load YAML with line marks, validate it, build the typed model."""
