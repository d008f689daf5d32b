"""The streaming calibration engine: run a model one decoder layer at a time."""
