"""Curbstop mobile package."""
