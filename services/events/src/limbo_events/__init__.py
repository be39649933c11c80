"""limbo-events: delivery events into the status store and the suppression list."""
