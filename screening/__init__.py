"""The screening team's side of the broker: receiving what the hub assembled."""
