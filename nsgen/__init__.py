"""nsgen: network-namespace labs rendered as standalone, reviewable bash scripts."""

__version__ = "0.1.0"
