"""Curbstop server package."""
