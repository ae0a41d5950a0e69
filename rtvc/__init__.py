"""rtvc: real-time streaming voice conversion."""

__version__ = "0.1.0"
