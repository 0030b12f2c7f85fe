"""Curbstop server: cis feature."""
