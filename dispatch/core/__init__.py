"""Kernel: settings, database, Redis, errors, outbox, events, accounts."""
