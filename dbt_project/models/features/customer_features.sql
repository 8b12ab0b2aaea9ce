-- The one wide feature table: one row per customer known at as_of.
-- depends_on: {{ ref('int_order_lines') }}
{{ customer_features_sql(
    as_of_date(),
    ref('feat_customer__rfm'),
    ref('feat_customer__orders'),
    ref('feat_customer__baskets'),
    ref('feat_customer__behavior'),
    category_values()
) }}
