"""Socialflow: draw an automation, publish it, and every matching event runs it."""

__version__ = "0.1.0"
