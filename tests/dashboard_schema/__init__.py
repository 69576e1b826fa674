"""Grafana dashboard schema check: npm harness (see test_dashboard_schema.py)."""
