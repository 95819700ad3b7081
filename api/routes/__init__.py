"""Thin FastAPI routers: each reads a request, calls the api/ package that does the work, answers."""
