"""Point-in-time customer features: a registry of documented features and their expressions."""
