-- Named RFM segment from R, F and M scores (1-5), as a persisted DuckDB macro.
-- Same rules as the dbt macro rfm_segment (dbt_project/macros/rfm_segment.sql):
-- fm = round-half-up of (f + m) / 2; a test checks both agree on all 125 combinations.
-- macro: ml.rfm_segment(r_score, f_score, m_score)
case
    when r_score is null or f_score is null or m_score is null then 'No Purchases'
    when r_score = 5 and floor((f_score + m_score) / 2.0 + 0.5) >= 4 then 'Champions'
    when r_score between 3 and 4 and floor((f_score + m_score) / 2.0 + 0.5) >= 4
        then 'Loyal Customers'
    when r_score >= 4 and floor((f_score + m_score) / 2.0 + 0.5) between 2 and 3
        then 'Potential Loyalist'
    when r_score = 5 and floor((f_score + m_score) / 2.0 + 0.5) = 1 then 'New Customers'
    when r_score = 4 and floor((f_score + m_score) / 2.0 + 0.5) = 1 then 'Promising'
    when r_score = 3 and floor((f_score + m_score) / 2.0 + 0.5) = 3 then 'Need Attention'
    when r_score = 3 and floor((f_score + m_score) / 2.0 + 0.5) <= 2 then 'About to Sleep'
    when r_score <= 2 and floor((f_score + m_score) / 2.0 + 0.5) = 5 then 'Can''t Lose Them'
    when r_score <= 2 and floor((f_score + m_score) / 2.0 + 0.5) between 3 and 4 then 'At Risk'
    when r_score = 1 and floor((f_score + m_score) / 2.0 + 0.5) = 1 then 'Lost'
    else 'Hibernating'
end
