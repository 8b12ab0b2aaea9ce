-- One row per customer with a purchase (rfm), an order (orders) or an event (behavior), as of as_of.
{{ feat_behavior_sql(as_of_date()) }}
