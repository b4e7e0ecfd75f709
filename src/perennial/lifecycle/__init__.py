"""Lifecycle: RFM scores, value tiers, stage models and stage history."""
