"""Test suite (a package so ``python -m unittest discover`` finds the database suites)."""
