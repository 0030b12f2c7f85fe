"""Curbstop routing package."""
