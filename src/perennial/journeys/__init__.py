"""Journeys: versioned automation documents (trigger, steps, entry rules), checked as a
graph before they can run, executed durably with every effect sent once."""
