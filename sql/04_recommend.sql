-- 5-6. Implicit ALS, top-10 recommendations, evaluation.
.print '== 5. Train implicit ALS (ecoreco.als_train: rank 50, 15 iterations; alpha, regularization, weighting, recency and blend chosen on a time split of the data) =='
CREATE OR REPLACE TABLE model AS FROM ecoreco.als_train(events, factors := 50, iterations := 15);
SELECT * FROM ecoreco.als_params(model);
SELECT iteration, round(loss, 6) AS loss FROM ecoreco.als_loss(model) WHERE iteration IN (1, 5, 10, 15);
.print '== 6. Top-10 for a few users (a buyer, a browser, a user the model has never seen) =='
SET VARIABLE buyer = (SELECT min(user_id) FROM events WHERE event_type = 'purchase');
SET VARIABLE browser = (SELECT min(user_id) FROM events WHERE user_id NOT IN (SELECT user_id FROM events WHERE event_type = 'purchase'));
FROM ecoreco.recommend(getvariable('buyer'), model := 'model', k := 10);
FROM ecoreco.recommend(getvariable('browser'), model := 'model', k := 10);
FROM ecoreco.recommend(-1, model := 'model', k := 10);
.print 'Products like the most popular one (ecoreco.similar_products):'
FROM ecoreco.similar_products((SELECT id FROM model WHERE side = 'product' ORDER BY value DESC, id LIMIT 1), model := 'model', k := 5);
.print 'Top-10 for every user, as a view BI tools can query:'
CREATE OR REPLACE VIEW top10 AS FROM ecoreco.recommend_all('model', k := 10);
SELECT count(*) AS rows, count(DISTINCT user_id) AS users, count(DISTINCT product_id) AS distinct_products FROM top10;
.print '== 7. Evaluation on a time split (first 80 % of the time span -> last 20 %) =='
CREATE OR REPLACE TABLE evaluation AS FROM ecoreco.evaluate_recommendations(events, split := 0.8, k := 10);
SELECT model, k, round(precision, 4) AS precision, round(recall, 4) AS recall, round(ndcg, 4) AS ndcg, round(map, 4) AS map,
       round(coverage, 4) AS coverage, users_evaluated, blend, round(rmse_vs_weight, 3) AS rmse_vs_weight
FROM evaluation;
