"""Escucha: the wiring package (settings, database engine, CLI, worker)."""

__version__ = "0.1.0"
