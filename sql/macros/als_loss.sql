-- ecoreco.als_loss(model): the training loss after each iteration.
SELECT id AS iteration, value AS loss FROM query_table(model) WHERE side = 'loss' ORDER BY id
