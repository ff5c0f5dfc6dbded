"""The server: gateway, ingest, store, diagnosis, orders, support (built issue by issue)."""
