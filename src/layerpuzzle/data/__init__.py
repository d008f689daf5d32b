"""Text sources (Hugging Face hub or a local mirror) and calibration sets."""
