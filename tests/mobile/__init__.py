"""Tests of the mobile package."""
