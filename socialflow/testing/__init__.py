"""Stand-ins for outside services, on loopback, for tests, benchmarks and local development.

``graph_api_emulator`` answers like Meta's Graph API (``python -m
socialflow.testing.graph_api_emulator --port N``). The product never imports this package (an
import contract in pyproject.toml refuses it); it ships in the wheel so that ``make up``, the
benchmarks and the tests can start it without the tests' folder.
"""
