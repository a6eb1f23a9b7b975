"""Fault injection for mash-hub: run real hub and adapter processes against a real broker,
break things while contacts flow, and count what was lost or doubled (``python -m faults``)."""
