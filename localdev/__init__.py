"""Stand-ins for Azure on a laptop and in CI. Never deployed."""
