"""The shared kernel: settings, database, errors, logging. Every other package builds on it."""
