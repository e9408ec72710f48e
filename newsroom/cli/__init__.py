"""The ``newsroom`` command line, one module per group of commands (``main`` registers
them); nothing of the domain imports it."""

from .main import cli, main

__all__ = ["cli", "main"]
