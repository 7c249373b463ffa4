"""SupportLens: self-hosted customer-support analytics."""

__version__ = "0.1.0"
