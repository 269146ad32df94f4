"""Typed trace events and the JSON Lines trace file. Imports no network or UI library."""
