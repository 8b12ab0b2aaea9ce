-- The observation date (as_of): the `as_of` var, else the latest valid order date.
-- Every feature is computed as of this date and never sees later data.
-- The var is checked to be a real date (sql_date): no other text reaches SQL.
{% if var('as_of', none) is not none %}
select {{ sql_date(var('as_of'), 'as_of') }} as as_of_date
{% else %}
select cast(max(ordered_at) as date) as as_of_date
from {{ ref('stg_shop__orders') }}
{% endif %}
