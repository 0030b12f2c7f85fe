"""Curbstop server: background jobs with progress."""
