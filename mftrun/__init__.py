"""mftrun: a declarative job runner for managed-file-transfer and backup platforms."""

__version__ = "0.1.0"
