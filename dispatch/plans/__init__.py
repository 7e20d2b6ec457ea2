"""Recurring services: plans per elder that create their requests by themselves."""
