"""Conformance tests of the local Amazon States Language executor."""
