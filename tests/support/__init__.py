"""Helpers shared by the tests: fakes at the library boundary, a real virtual microphone, waiting."""
