"""What the Python benches share: where the extension and the real data
are, a connection with the extension loaded, and NDCG@k of a factor model
scored the way ecoreco serves (products the user bought are left out)."""
import math
import os
import sys

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
# The real data (../shared/data next to the checkout).
DATA = os.path.join(HERE, "..", "..", "shared", "data")
if not os.path.isdir(DATA):
    DATA = "/work/shared/data"


def extension():
    """The extension named on the command line, else the release build."""
    return os.path.abspath(sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("-")
                           else "build/release/ecoreco.duckdb_extension")


def connect(ext, **config):
    """An in-memory connection with `ext` loaded (3 GB memory_limit unless `config` says)."""
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", "memory_limit": "3GB", **config})
    con.execute(f"LOAD '{ext}'")
    return con


def ndcg_at_k(recommended, relevant, k):
    dcg = sum(1.0 / math.log2(i + 2) for i, item in enumerate(recommended[:k]) if item in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal else 0.0


def factor_ndcg(np, users, items, user_factors, item_factors, relevant, bought, k):
    """Mean NDCG@k over the users of `relevant` (user -> set of products)
    the model knows: each scored on every product, those in `bought`
    (user -> products) left out, ties by product order."""
    position = {u: i for i, u in enumerate(users)}
    uf, itf = np.asarray(user_factors), np.asarray(item_factors)
    scores_all = []
    for u, rel in relevant.items():
        if u not in position:
            continue
        scores = itf @ uf[position[u]]
        for p in bought.get(u, ()):
            scores[np.searchsorted(items, p)] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        scores_all.append(ndcg_at_k([items[i] for i in top], rel, k))
    return scores_all
