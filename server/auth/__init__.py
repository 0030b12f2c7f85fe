"""Curbstop server: auth feature."""
