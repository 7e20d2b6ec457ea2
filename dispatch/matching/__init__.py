"""Matching: the pure decision core, capacity accounting, and the glue that applies decisions."""
