"""runtime: datasets, training, evaluation and search over compiled graphs (arrives with its issues)."""
