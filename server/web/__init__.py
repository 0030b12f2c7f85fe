"""Curbstop server: pages for dispatchers."""
