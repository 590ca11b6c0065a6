"""Training recipes: thin modules that read top to bottom (config -> data -> model -> trainer)."""
