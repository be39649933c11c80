"""The baseline the benchmark compares limbo with: the original design, not limbo."""
