"""Curbstop server: hand-held meter-reading devices, reading routes, uploads."""
