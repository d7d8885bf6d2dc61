"""The Rust aggregates called directly, with valid arguments, as their macros
call them: the statements that build the tables they read and their argument
lists. Shared by test_forms.py (every calling form) and test_reliability.py
(the reproducers of "never crash the host")."""

def raw_table(events=3000):
    """The generated events behind every source table."""
    return f"CREATE TEMP TABLE raw AS FROM ecoreco_synth(events := {events}, seed := 5)"


EVENTS = [raw_table(), "CREATE TEMP TABLE events AS FROM ecoreco.clean_events(raw)"]
RFM = "CREATE TEMP TABLE rfm AS FROM ecoreco.rfm_features(events)"
INTERACTIONS = "CREATE TEMP TABLE inter AS FROM ecoreco.interactions(events)"
MODEL_TABLE = "CREATE TEMP TABLE model AS FROM ecoreco.als_train(events, factors := 4, iterations := 2, search := false)"
KFEAT_TABLE = (
    "CREATE TEMP TABLE kfeat AS SELECT user_id, list_position(['recency', 'frequency'], feature)::BIGINT AS pos, "
    "feature, value FROM (SELECT user_id, recency::DOUBLE AS recency, frequency::DOUBLE AS frequency FROM rfm) "
    "UNPIVOT (value FOR feature IN (recency, frequency))"
)
# The pair rows ecoreco_als_train and ecoreco_evaluate read, shaped as the
# macros shape them (see the macro_definition of ecoreco.als_train).
PAIR_TABLES = [
    "CREATE TEMP TABLE als_src AS WITH span AS (SELECT min(epoch(last_event)) AS lo, max(epoch(last_event)) AS hi FROM inter) "
    "SELECT user_id, product_id, weight, purchases, interactions, category_id, epoch(last_event) AS last_time, "
    "weight AS v_weight, purchases AS v_purchases, interactions AS v_interactions, epoch(last_event) AS v_time, "
    "carts + purchases > 0 AS v_target, lo + (hi - lo) * 0.8 AS v_cut, lo AS first_time FROM inter, span",
    "CREATE TEMP TABLE eval_src AS SELECT CASE WHEN last_time < v_cut THEN 'train' ELSE 'test' END AS part, *, "
    "last_time >= v_cut AND v_target AS relevant FROM als_src",
]

USERS = EVENTS + [RFM]
INTER = EVENTS + [INTERACTIONS]
MODEL = EVENTS + [MODEL_TABLE]
KFEAT = USERS + [KFEAT_TABLE]
PAIRS_SETUP = INTER + PAIR_TABLES
# Every table above, each built once, in an order that works.
ALL_TABLES = EVENTS + [RFM, INTERACTIONS, MODEL_TABLE, KFEAT_TABLE] + PAIR_TABLES

PAIRS = ("user_id, product_id, weight, purchases, interactions, category_id, last_time, v_weight, v_purchases, "
         "v_interactions, v_time, v_target, v_cut, first_time")
TRAINING = "4, 2, 0.1, 1.0, 2, 1, NULL, NULL, false"
LIMITS = "2, '2GB'"
# The product attributes (brand, its time, price, its time) als_train's macro
# passes after the pairs; none here.
ATTRIBUTES = "NULL::VARCHAR, NULL::DOUBLE, NULL::DOUBLE, NULL::DOUBLE"
# The session steps (session key, order) als_train's macro feeds with the
# search on, on rows of their own; none here.
SESSION_STEPS = "NULL::BIGINT, NULL::DOUBLE"
# The serving rules (max_per_category, max_per_brand, min_price, max_price,
# diversity) recommend_all passes; none here.
RULES = "NULL::BIGINT, NULL::BIGINT, NULL::DOUBLE, NULL::DOUBLE, 0.0"

# aggregate -> (statements that build its source, source table, a key column
# to group or order by, its arguments as the macros pass them)
CALLS = {
    "ecoreco_als_train": (PAIRS_SETUP, "als_src", "user_id",
                          f"'ecoreco.als_train', {PAIRS}, {ATTRIBUTES}, {SESSION_STEPS}, {TRAINING}, {LIMITS}, 'false'"),
    "ecoreco_evaluate": (PAIRS_SETUP, "eval_src", "user_id",
                         f"'ecoreco.evaluate_recommendations', part, {PAIRS}, relevant, {SESSION_STEPS}, {TRAINING}, 3, 0.5, {LIMITS}, 'false'"),
    "ecoreco_kmeans": (KFEAT, "kfeat", "user_id",
                       f"'ecoreco.kmeans_segments', user_id, pos, feature, value, 2, 1, 5, 0, 1, 'squared_euclidean', 2, {LIMITS}"),
    "ecoreco_kmeans_sweep": (KFEAT, "kfeat", "user_id",
                             f"'ecoreco.kmeans_sweep', user_id, pos, feature, value, 2, 3, 1, 5, 100, 1, 'squared_euclidean', 2, {LIMITS}"),
    "ecoreco_serve": (MODEL, "model", "id", "'ecoreco.recommend_all', model_id, side, id, item, name, value, factors, NULL, NULL, "
                      f"'', 'all', NULL, false, 2, 0.5, true, {RULES}, NULL::DOUBLE, {LIMITS}, 'false'"),
}
