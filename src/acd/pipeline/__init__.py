"""What the DVC stages run: params, chunking, head training, prompts and generation."""
