"""Curbstop server: bills, rate schedules, rating, and billing adjustments with their approval workflow."""
