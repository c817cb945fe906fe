"""tunelab: from raw domain data to an evaluated, versioned, served fine-tuned language model."""

__version__ = "0.1.0"
