"""Curbstop server: audit feature."""
