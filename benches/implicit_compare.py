#!/usr/bin/env python3
"""Seconds per ALS iteration of the `implicit` library (CPU, conjugate
gradient) on a `user,item,value` triplet CSV, for comparison with ecoreco's
ALS on the same matrix.

The CSV is the 100K x 50K matrix of the criterion bench `benches/als.rs`,
written when `ECORECO_ALS_CSV` is set (header line, then 0-based user and
item ids and a raw weight r per line); that bench also prints ecoreco's time
per iteration on it. ecoreco uses the
confidence c = 1 + alpha*r; `implicit` (>= 0.5) uses the matrix values times
its own `alpha` as the confidence, so we hand it the values 1 + alpha*r and
alpha = 1 — both then solve exactly the same equations.

    ECORECO_ALS_CSV=/tmp/ecoreco_als_bench.csv RAYON_NUM_THREADS=2 cargo bench --bench als
    python3 -m venv /tmp/implicit-venv
    /tmp/implicit-venv/bin/pip install implicit scipy numpy
    /tmp/implicit-venv/bin/python benches/implicit_compare.py /tmp/ecoreco_als_bench.csv

Prints one line per iteration and a final
`implicit ALS: median <seconds> s per iteration` line.
"""
import argparse
import os
import sys
import time

# implicit runs its own thread pool; a multi-threaded BLAS underneath would
# oversubscribe the cores (implicit warns about this), so pin BLAS to 1 thread
# before numpy loads it.
for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402


def load_triplets(path):
    """CSR user x item matrix of raw weights (duplicates summed)."""
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    users = data[:, 0].astype(np.int64)
    items = data[:, 1].astype(np.int64)
    values = data[:, 2].astype(np.float32)
    shape = (int(users.max()) + 1, int(items.max()) + 1)
    return sp.coo_matrix((values, (users, items)), shape=shape).tocsr()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", help="user,item,value triplet CSV with a header line")
    parser.add_argument("--factors", type=int, default=50)
    parser.add_argument("--regularization", type=float, default=0.1)
    parser.add_argument("--alpha", type=float, default=1.0, help="confidence = 1 + alpha * value")
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--loss", action="store_true", help="also print implicit's training loss per iteration (timed separately)")
    args = parser.parse_args()

    from implicit.cpu import _als
    from implicit.cpu.als import AlternatingLeastSquares

    raw = load_triplets(args.csv)
    confidence = raw.copy()
    confidence.data = (1.0 + args.alpha * confidence.data).astype(np.float32)
    print(f"matrix {raw.shape[0]} users x {raw.shape[1]} items, nnz {raw.nnz}", flush=True)

    model = AlternatingLeastSquares(
        factors=args.factors,
        regularization=args.regularization,
        alpha=1.0,
        use_cg=True,
        iterations=args.iterations,
        num_threads=args.threads,
        random_state=args.seed,
        calculate_training_loss=False,
    )
    seconds = []

    def on_iteration(iteration, elapsed, _loss):
        # `elapsed` covers the user and the item half of this iteration only.
        seconds.append(elapsed)
        line = f"iteration {iteration}: {elapsed:.4f} s"
        if args.loss:
            start = time.perf_counter()
            loss = _als.calculate_loss(
                confidence, model.user_factors, model.item_factors, args.regularization, num_threads=args.threads
            )
            line += f" (+ loss {time.perf_counter() - start:.4f} s), loss {loss:.6f}"
        print(line, flush=True)

    model.fit(confidence, show_progress=False, callback=on_iteration)
    print(f"implicit ALS: median {float(np.median(seconds)):.4f} s per iteration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
