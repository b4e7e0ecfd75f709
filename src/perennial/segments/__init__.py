"""Tags and segments: a safe expression language over profiles, predictions, events and tags,
saved segments with live membership and enter/exit events."""
