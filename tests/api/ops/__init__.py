"""Tests of the operations batteries (api/ops)."""
