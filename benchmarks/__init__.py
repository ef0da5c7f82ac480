"""Speed benchmarks: our engine against a vectorized numpy IF simulator and Keras forward passes,
measured side by side in one process and reported as ratios. Run with ``make bench`` or
``python -m benchmarks [--only NAME] [--quick]``; figures go to docs/benchmarks.md."""
