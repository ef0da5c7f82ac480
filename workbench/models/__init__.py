"""What a network IS: the framework-free graph, Keras import, normalization. No Qt, TF only lazily."""
