-- The observation date (as_of): the `as_of` var, else the latest valid order date.
-- Every feature is computed as of this date and never sees later data.
{% if var('as_of', none) %}
select cast({{ sql_string(var('as_of')) }} as date) as as_of_date
{% else %}
select cast(max(ordered_at) as date) as as_of_date
from {{ ref('stg_shop__orders') }}
{% endif %}
