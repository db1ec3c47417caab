"""Always-on archiving: the watch loop, its configuration, health and metrics."""
