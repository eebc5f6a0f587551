"""Alembic migrations of the store schema (SQLite and PostgreSQL); run by ``stratowatch.store``."""
