"""Service requests: intake, lifecycle (the state machine), offers, manual dispatch."""
