"""Curbstop server: route plans, publishing and mid-day changes."""
