"""Curbstop server: orders feature."""
