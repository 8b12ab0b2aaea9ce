"""pyprofile: customer profiles inside your SQL warehouse."""

__version__ = "0.1.0"
