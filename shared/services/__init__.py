"""Use cases: runs, tenants and grants, notifications, capture."""
