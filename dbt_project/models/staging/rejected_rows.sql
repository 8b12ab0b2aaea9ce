-- Every raw row that staging kept out, with its table, key and reason:
-- staged rows + rejected rows = raw rows, for every table.
{%- set customer = "cast(customer_id as " ~ dbt.type_string() ~ ")" %}
{% set keys = {
    'customers': customer,
    'orders': "order_id",
    'products': "product_id",
    'order_items': "order_id || '/' || product_id",
    'events': customer ~ " || '@' || cast(event_at as " ~ dbt.type_string() ~ ")",
} %}
{% for table, key in keys.items() %}
select
    {{ sql_string(table) }} as table_name,
    coalesce({{ key }}, '<null>') as record_key,
    reject_reason as reason
from {{ ref('base_shop__' ~ table) }}
where reject_reason is not null
{% if not loop.last %}union all{% endif %}
{% endfor %}
