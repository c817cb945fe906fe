"""`tunelab serve`: OpenAI-compatible files, fine-tuning jobs and inference over the local trainer."""
