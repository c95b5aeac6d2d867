"""Faust tables (changelog-backed) and the pure transitions of the values they hold."""
