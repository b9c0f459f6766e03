"""Locust load tests against a running platform (README, "Load tests"); load/run.py runs one scenario."""
