-- ecoreco.als_params(model): the parameters and sizes a model was trained with.
SELECT name, value FROM query_table(model) WHERE side = 'param' ORDER BY name
