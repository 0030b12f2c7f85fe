"""Curbstop server: technicians feature."""
