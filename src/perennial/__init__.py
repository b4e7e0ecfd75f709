"""Perennial: customer lifecycle management."""
