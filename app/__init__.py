"""ForYou's web layer."""

import os

# One BLAS thread per process, set before numpy loads: on a small shared box multi-threaded BLAS made the
# recommender 3-5x slower (make bench). Torch gets one thread per model too (media.models).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
