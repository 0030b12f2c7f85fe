"""Curbstop device_bridge package."""
