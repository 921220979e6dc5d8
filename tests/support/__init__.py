"""Helpers shared by the tests: real servers started on loopback, service checks."""
