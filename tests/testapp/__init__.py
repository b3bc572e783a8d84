"""A tiny shop the test suite triggers emails on."""
