-- ecoreco.rfm_segments(users): R, F and M scored 1-5 against the table's own
-- distribution, and the classic RFM segment names.
-- A score is the quintile of the user's rank among all n users, ranked from
-- worst to best (recency: oldest last event first; frequency and monetary:
-- smallest first; NULL counts as worst): score = 1 + (5 * (rank - 1)) // n.
-- rank() gives tied users the lowest position of their group, so ties share
-- one score, the lower one (every user without a purchase has monetary 0 and
-- gets M = 1 whatever their number), and a quintile can hold more or fewer
-- than n / 5 users.
WITH scored AS (
  SELECT user_id, recency, frequency, monetary,
         (1 + (5 * (rank() OVER (ORDER BY recency DESC NULLS FIRST) - 1)) // count(*) OVER ())::INTEGER AS r_score,
         (1 + (5 * (rank() OVER (ORDER BY frequency ASC NULLS FIRST) - 1)) // count(*) OVER ())::INTEGER AS f_score,
         (1 + (5 * (rank() OVER (ORDER BY monetary ASC NULLS FIRST) - 1)) // count(*) OVER ())::INTEGER AS m_score
  FROM query_table(users)
  WHERE user_id IS NOT NULL)
SELECT user_id, recency, frequency, monetary, r_score, f_score, m_score,
       (100 * r_score + 10 * f_score + m_score)::INTEGER AS rfm_score,
       -- First match wins; every (R, F, M) has exactly one name.
       CASE
         WHEN r_score >= 4 AND f_score >= 4 AND m_score >= 4 THEN 'Champions'
         WHEN r_score >= 3 AND f_score >= 4 THEN 'Loyal'
         WHEN r_score >= 4 AND f_score >= 2 THEN 'Potential loyalists'
         WHEN r_score = 5 THEN 'New'
         WHEN r_score = 4 THEN 'Promising'
         WHEN r_score = 3 THEN 'Need attention'
         WHEN f_score >= 4 AND m_score >= 4 THEN 'Cannot lose them'
         WHEN f_score >= 3 OR m_score >= 3 THEN 'At risk'
         WHEN r_score = 2 THEN 'Hibernating'
         ELSE 'Lost'
       END AS segment
FROM scored
ORDER BY user_id
