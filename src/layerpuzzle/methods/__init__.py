"""Depth-compression methods: CoMe and the baselines it is compared against."""
