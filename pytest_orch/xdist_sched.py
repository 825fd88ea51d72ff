"""xdist integration (being written): the DAG scheduler for -n N."""
