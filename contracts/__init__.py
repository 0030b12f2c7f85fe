"""Curbstop contracts package."""
