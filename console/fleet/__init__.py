"""Many hosts from one console: the contexts file, one watch per host, and the fleet table."""
