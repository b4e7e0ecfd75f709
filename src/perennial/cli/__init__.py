"""The ``perennial`` command line: thin commands over the package's functions."""
