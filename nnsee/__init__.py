"""nnsee: train an image classifier, then see what it learned."""

__version__ = "0.1.0"
