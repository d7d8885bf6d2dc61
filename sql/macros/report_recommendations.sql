-- The recommendation part of ecoreco.report, run through query():
-- {model} is the model table's name as a string literal, {seed} a number.
-- Rows by kind: 'product' (id = product, n = times recommended, x = sum of
-- scores), 'sample' (a seeded sample of at most 2,000 recommendations:
-- id = product, n = user, x = score), 'bin' (20 equal score bins: id = bin,
-- n = count, x and y = its bounds), 'totals' (id = users, n = rows,
-- x and y = lowest and highest score), 'model' (id = products in the model).
WITH r AS MATERIALIZED (
    SELECT user_id, product_id, score FROM ecoreco.recommend_all({model})
),
lim AS (
    SELECT min(score) AS lo, max(score) AS hi, count(*) AS n, count(DISTINCT user_id) AS users FROM r
),
binned AS (
    SELECT CASE WHEN lim.hi > lim.lo THEN least(floor((r.score - lim.lo) / (lim.hi - lim.lo) * 20), 19) ELSE 0 END::BIGINT AS bin,
           count(*) AS n
    FROM r, lim GROUP BY ALL
)
SELECT 'product' AS kind, product_id AS id, count(*)::BIGINT AS n, sum(score)::DOUBLE AS x, NULL::DOUBLE AS y
FROM r GROUP BY product_id
UNION ALL
(SELECT 'sample', product_id, user_id, score, NULL
 FROM r ORDER BY hash(user_id, product_id, {seed}), user_id, product_id LIMIT 2000)
UNION ALL
SELECT 'bin', b.range, coalesce(binned.n, 0),
       lim.lo + b.range * (lim.hi - lim.lo) / 20, lim.lo + (b.range + 1) * (lim.hi - lim.lo) / 20
FROM lim CROSS JOIN range(20) b LEFT JOIN binned ON binned.bin = b.range
WHERE lim.n > 0
UNION ALL
SELECT 'totals', users, n, lo, hi FROM lim
UNION ALL
SELECT 'model', count(*) FILTER (side = 'product'), NULL, NULL, NULL FROM query_table({model})
