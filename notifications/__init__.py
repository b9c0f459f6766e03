"""Notifications: execution reports on private streams, in-app notifications and e-mail."""
