"""Curbstop server: meters feature."""
