"""Outbox: domain events written in the business transaction, delivered at least once by Celery workers."""
