-- read_events: the reader already turned empty and NaN fields into NULL
-- (nullstr), which is much cheaper than testing text afterwards.
coalesce({column}, 'unknown') AS {column}
