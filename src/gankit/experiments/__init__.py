"""Small runnable experiments that check claims of the GAN lectures with numbers."""
