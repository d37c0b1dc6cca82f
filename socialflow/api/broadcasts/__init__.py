"""Broadcasts: compose, preview, send now or at a time, progress, recipients, cancel."""
