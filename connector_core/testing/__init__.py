"""Helpers for plugin authors: the contract-test kit and sandbox protocol."""
