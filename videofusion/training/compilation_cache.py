"""JAX's persistent compilation cache for training runs (`train.compilation_cache`): the programs XLA
compiles, kept on disk for the next process that compiles the same ones. Imports no TensorFlow, so
that `benchmarks/bench_accelerator.py` can use it on a machine without it.

Example (under the JAX backend; elsewhere it does nothing):

>>> use("")  # JAX's own setting
"""

import os

import keras


def use(folder: str) -> None:
    """Under the JAX backend, keeps every program XLA compiles in `folder` (`~` expanded), where later
    processes find them instead of compiling again: JAX's persistent compilation cache, for programs of
    any size (JAX's default keeps only those that took a second or more, which leaves out the random
    initialisers). "" leaves JAX's own setting (`JAX_COMPILATION_CACHE_DIR`, unset: no cache); the
    TensorFlow backend is left as it is.

    Measured (`videofusion train` of `experiments/demo.py:smoke` under JAX, 2 CPU cores): 70 programs
    compiled in 18.2 s and the run took 31 s; run again with the cache, the 70 were read from it in
    0.7 s and the run took 13 s.
    """
    if not folder or keras.config.backend() != "jax":
        return
    import jax  # the JAX backend only

    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
