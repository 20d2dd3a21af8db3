"""puppetcam: real-time streaming portrait animation on a CPU."""

__version__ = "0.1.0"
