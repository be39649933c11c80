"""limbo's benchmark harness: see bench/run and the README's Performance section."""
