"""Curbstop server: demo feature."""
