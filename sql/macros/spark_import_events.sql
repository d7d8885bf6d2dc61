-- The events' part of ecoreco.als_import_spark: the (user, product) pairs
-- exactly as ecoreco.als_train sees them.
UNION ALL BY NAME
SELECT 'pair' AS kind, user_id, product_id, weight, purchases, interactions, category_id
FROM ecoreco.interactions({events})
