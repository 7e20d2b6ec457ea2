"""Demo data for the Jinghai district."""
