"""The service's HTTP routes: one module per group, each defining a FastAPI `router`."""
