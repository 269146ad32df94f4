"""Probes do the live network work and only record what they see into a Recorder."""
