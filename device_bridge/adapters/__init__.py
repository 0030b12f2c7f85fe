"""Vendor fixed-width route/read file layouts, as adapters onto contracts.handheld records."""
