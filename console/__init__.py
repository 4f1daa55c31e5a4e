"""loopctl: the operator console for hosts that run AI-agent work."""

__version__ = "0.1.0"
