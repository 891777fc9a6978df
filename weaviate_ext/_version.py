"""The framework's version, read by setup.cfg and by manifest dependency checks."""

__version__ = "0.1.0"
