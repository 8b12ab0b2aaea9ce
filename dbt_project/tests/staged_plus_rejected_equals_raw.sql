-- For every raw table: staged rows + rejected rows = raw rows. Returns the tables where not.
{% set tables = ['customers', 'orders', 'products', 'order_items', 'events'] %}
with counts as (
    {% for t in tables %}
    select
        {{ sql_string(t) }} as table_name,
        (select count(*) from {{ ref('base_shop__' ~ t) }}) as raw_rows,
        (select count(*) from {{ ref('stg_shop__' ~ t) }}) as staged_rows,
        (select count(*) from {{ ref('rejected_rows') }} where table_name = {{ sql_string(t) }})
            as rejected_rows
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select *
from counts
where staged_rows + rejected_rows <> raw_rows
