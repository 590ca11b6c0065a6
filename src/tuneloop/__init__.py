"""tuneloop: turn an open-weights model into a reliable assistant, and keep improving it."""

__version__ = "0.1.0"
