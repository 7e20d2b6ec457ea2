"""Welfare checks: when a service did not reach an elder, a person must look in on them."""
