"""Spartoo marketplace plugin for connector-host."""

__version__ = "0.1.0"
