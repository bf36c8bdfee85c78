"""Acme Bazaar marketplace plugin for connector-host: the plugin-writing tutorial's code."""

__version__ = "0.1.0"
