"""Visit verification (check-in/out, the six facts of EVV) and feedback."""
