-- One row per buying customer: what they buy (products, basket size, spend share per category).
{{ feat_baskets_sql(as_of_date(), category_values()) }}
