"""Accounts: sign-in (tokens) and account management."""
