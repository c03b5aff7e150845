"""Test helpers against the real broker and database (never an in-memory fake)."""
