"""Curbstop server: accounts feature."""
