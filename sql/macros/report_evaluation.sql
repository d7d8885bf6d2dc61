-- The evaluation part of ecoreco.report, run through query(): {evaluation}
-- is the name, as a string literal, of a table holding the output of
-- ecoreco.evaluate_recommendations. `model` is renamed: the report macro
-- has a parameter of that name.
SELECT model::VARCHAR AS recommender, k::BIGINT AS k, "precision"::DOUBLE AS "precision", recall::DOUBLE AS recall,
       ndcg::DOUBLE AS ndcg, "map"::DOUBLE AS "map", coverage::DOUBLE AS coverage, users_evaluated::BIGINT AS users_evaluated
FROM query_table({evaluation})
