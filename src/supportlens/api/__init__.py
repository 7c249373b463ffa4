"""HTTP API: thin FastAPI routers."""
