"""Benchmarks (`make bench-api`); nothing here is part of the product."""
