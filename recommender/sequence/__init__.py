"""The sequence model (GRU4Rec): what a user is likely to engage with next, given the order of what they
engaged with last. Trained by the ``sequence_model`` job; used as the ``sequence/next`` candidate source
and as the ranker's ``sequence`` feature."""
