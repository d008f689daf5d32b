"""Model sources, architecture access and checkpoint I/O."""
