"""Cross-cutting pieces of the native REST API: the error shape and shared helpers."""
