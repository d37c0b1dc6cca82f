"""Tests of Instagram webhooks, events, triggers and the simulator."""
