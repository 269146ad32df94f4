"""Renderers show a verdict; they decide nothing."""
