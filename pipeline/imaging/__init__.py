"""Image helpers that are not operations: decoding, perceptual hash, colour, gravity."""
