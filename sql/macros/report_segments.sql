-- The segments part of ecoreco.report, run through query(): {segments} is
-- the segments table's name as a string literal (ecoreco.kmeans_segments
-- output, or any table with user_id, segment_id and segment).
SELECT user_id::BIGINT AS user_id, segment_id::BIGINT AS segment_id, segment::VARCHAR AS segment
FROM query_table({segments})
