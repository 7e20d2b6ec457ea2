"""Elder registry and family links."""
