"""Web service (FastAPI) of the dispatch platform: core kernel and domain packages."""
