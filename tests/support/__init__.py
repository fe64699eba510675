"""Helpers the tests share: real brokers, cameras, sites, stores and runs (no mocks)."""
