#!/usr/bin/env python3
"""A second, independent REES46-shaped generator for the quality bench: bench
data, not part of the extension, written so that nothing ecoreco chooses can
have been tuned on it.

Its structure differs from `ecoreco_synth` (fixed favourite categories):
- tastes are latent *styles* that cut across categories (a style's products
  spread over many category_ids), so category interest is a weak signal;
- tastes *drift*: each user starts with two styles and moves to two others
  (sharing one with probability 0.5) over their active window, so recent
  events say more about later carts than early ones;
- a strong repeat-visit rate: each event after a user's first revisits one of
  their earlier products with probability `repeat` (0.5 by default), and a
  revisit is five times as likely to be a cart or a purchase.

Product popularity within a style is Pareto(1.1); user activity is
log-normal; sessions are runs of events a minute or so apart. Rows have the
nine raw REES46 columns (event_time as a TIMESTAMP, which
`ecoreco.clean_events` accepts). Deterministic for a seed (numpy PCG64).

    python benches/gen_drift.py --events 1000000 --seed 3 --out drift.csv
or, from Python: `drift_events(con, "events", events=1_000_000, seed=3)`.
"""
import argparse
import sys

import numpy as np

STYLES = 64
CATEGORIES = 40
CODES = ["electronics.smartphone", "computers.notebook", "appliances.kitchen.washer", "apparel.shoes",
         "furniture.living_room.sofa", "kids.toys", "sport.bicycle", "construction.tools.drill"]
BRANDS = ["samsung", "apple", "xiaomi", "huawei", "lg", "bosch", "sony", "lenovo", "acer", "hp"]


def generate(events, seed, users=None, products=None, days=31, repeat=0.5):
    """The rows as a dict of numpy columns (user-major, time-sorted per user)."""
    rng = np.random.default_rng(seed)
    n_users = users or max(events // 12, 1)
    n_products = products or int(np.clip(events // 200, 50, 200_000))
    # Products: a style each (uneven style sizes), a category only loosely
    # tied to the style, a popularity, a brand and a price.
    style_share = rng.dirichlet(np.full(STYLES, 2.0))
    product_style = rng.choice(STYLES, n_products, p=style_share)
    loose = rng.random(n_products) < 0.3
    product_category = np.where(loose, (product_style * 7) % CATEGORIES, rng.integers(0, CATEGORIES, n_products))
    popularity = rng.pareto(1.1, n_products) + 1.0
    # Sampling a product of a style by popularity: products sorted by style,
    # each style's cumulative popularity scaled into [style, style + 1).
    order = np.lexsort((np.arange(n_products), product_style))
    sorted_style = product_style[order]
    cumulative = np.zeros(n_products)
    for s in range(STYLES):
        members = np.nonzero(sorted_style == s)[0]
        if len(members):
            c = np.cumsum(popularity[order[members]])
            cumulative[members] = s + c / c[-1]
    present = np.unique(sorted_style)

    def draw(styles):
        # Styles without products fall back to the nearest one that has some.
        styles = present[np.clip(np.searchsorted(present, styles), 0, len(present) - 1)]
        at = np.searchsorted(cumulative, styles + rng.random(len(styles)) * (1 - 1e-12))
        return order[np.clip(at, 0, n_products - 1)]

    # Users: activity (events per user), an active window, two early and two
    # late styles.
    activity = rng.lognormal(0.0, 1.1, n_users)
    per_user = np.maximum(1, np.round(activity / activity.sum() * events)).astype(np.int64)
    excess = per_user.sum() - events
    if excess > 0:  # trim the heaviest users to hit the event count exactly
        for u in np.argsort(-per_user)[:excess]:
            per_user[u] -= 1 if per_user[u] > 1 else 0
    user_of = np.repeat(np.arange(n_users), per_user)
    n = len(user_of)
    span = days * 86400.0
    start = rng.random(n_users) * span * 0.7
    window = np.minimum(span - start, rng.uniform(0.2, 1.0, n_users) * span)
    early = rng.choice(STYLES, (n_users, 2), p=style_share)
    late = rng.choice(STYLES, (n_users, 2), p=style_share)
    keep = rng.random(n_users) < 0.5
    late[keep, 0] = early[keep, 0]
    # Sessions: about three events each, a minute or so apart.
    sessions = np.maximum(1, per_user // 3)
    session_of = (rng.random(n) * np.repeat(sessions, per_user)).astype(np.int64)
    session_start = start[user_of] + rng.random(n) * window[user_of]
    # One start per (user, session): take the first draw of each pair.
    key = user_of * (sessions.max() + 1) + session_of
    uniq, first = np.unique(key, return_index=True)
    starts = session_start[first][np.searchsorted(uniq, key)]
    times = starts + rng.exponential(60.0, n)
    times = np.minimum(times, span - 1)
    order_events = np.lexsort((times, user_of))
    user_of, session_of, times = user_of[order_events], session_of[order_events], times[order_events]
    # Taste at the event's time: late styles more likely as the window goes on.
    progress = np.clip((times - start[user_of]) / np.maximum(window[user_of], 1.0), 0.0, 1.0)
    use_late = rng.random(n) < progress
    pick = rng.integers(0, 2, n)
    styles = np.where(use_late, late[user_of, pick], early[user_of, pick])
    product = draw(styles)
    # Revisits: an event points at a uniformly chosen earlier event of the
    # same user; pointer jumping resolves chains of revisits.
    first_of_user = np.concatenate([[0], np.cumsum(per_user)[:-1]])[user_of]
    position = np.arange(n) - first_of_user
    revisit = (position > 0) & (rng.random(n) < repeat)
    pointer = np.arange(n)
    pointer[revisit] = first_of_user[revisit] + (rng.random(revisit.sum()) * position[revisit]).astype(np.int64)
    while True:
        nxt = pointer[pointer]
        if np.array_equal(nxt, pointer):
            break
        pointer = nxt
    product = product[pointer]
    # Event types: revisits convert five times as often.
    u = rng.random(n)
    cart_p = np.where(revisit, 0.045, 0.009)
    buy_p = np.where(revisit, 0.035, 0.007)
    event_type = np.where(u < buy_p, "purchase", np.where(u < buy_p + cart_p, "cart", "view"))
    price = np.round(np.exp(rng.normal(4.5, 1.2, n_products)), 2)
    code_of = rng.integers(-3, len(CODES), CATEGORIES)  # negative: no category_code
    brand_of = rng.integers(-1, len(BRANDS), n_products)
    return {
        "epoch_s": times.astype(np.int64) + 1569888000,  # 2019-10-01 00:00:00 UTC
        "event_type": event_type,
        "product_id": (product + 1_000_000).astype(np.int64),
        "category_id": (product_category[product] + 2_053_013_552_000_000_000).astype(np.int64),
        "code": code_of[product_category[product]].astype(np.int64),
        "brand": brand_of[product].astype(np.int64),
        "price": price[product],
        "user_id": (user_of + 500_000_000).astype(np.int64),
        "session": (user_of * 1000 + session_of).astype(np.int64),
    }


def raw_sql(view):
    codes = "[" + ", ".join(f"'{c}'" for c in CODES) + "]"
    brands = "[" + ", ".join(f"'{b}'" for b in BRANDS) + "]"
    return (f"SELECT make_timestamp(epoch_s * 1000000) AS event_time, event_type, product_id, category_id, "
            f"CASE WHEN code >= 0 THEN {codes}[code + 1] END AS category_code, "
            f"CASE WHEN brand >= 0 THEN {brands}[brand + 1] END AS brand, price, user_id, "
            f"'s' || lpad(session::VARCHAR, 12, '0') AS user_session FROM {view}")


def drift_events(con, name, events, seed, **kw):
    """Creates TEMP table `name`: cleaned events (ecoreco loaded on `con`)."""
    con.register("drift_columns", generate(events, seed, **kw))
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw_{name} AS {raw_sql('drift_columns')}")
    con.unregister("drift_columns")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS FROM ecoreco.clean_events(raw_{name})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--repeat", type=float, default=0.5)
    parser.add_argument("--out", required=True, help="CSV file to write (REES46 format)")
    args = parser.parse_args()
    import duckdb
    con = duckdb.connect()
    con.register("drift_columns", generate(args.events, args.seed, repeat=args.repeat))
    con.execute(f"COPY ({raw_sql('drift_columns')}) TO '{args.out}' (HEADER, TIMESTAMPFORMAT '%Y-%m-%d %H:%M:%S UTC')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
