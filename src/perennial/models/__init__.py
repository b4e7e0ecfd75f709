"""Predictions: buy-till-you-die models and CLV, churn risk with reasons, next order dates.

Every output becomes a plain profile field, so segments, journeys, tasks and pages use
predictions like any other column.
"""

__all__: list[str] = []
