"""Curbstop benchmarks: `make bench` (all) or `make bench-<name>`; results go to docs/benchmarks.md."""
