"""The task queue (two shapes: in-process and Celery) and every task's name, declared once (names.py)."""
