"""Tests of database.mongodb that need no server."""
