-- The observation date (as_of): the `as_of` var, else the latest valid order date.
-- Every feature is computed as of this date and never sees later data.
-- The var is checked to be a real date (sql_date): no other text reaches SQL.
{% if var('as_of', none) is not none %}
select {{ sql_date(var('as_of'), 'as_of') }} as as_of_date
{% else %}
select
    case
        when max(ordered_at) is null
            then cast({{ sql_error(
                "pyprofile: no valid order to take the observation date (as_of) from: "
                ~ "stg_shop__orders is empty (the reasons are in staging.rejected_rows); "
                ~ "load orders or pass --as-of"
            ) }} as date)
        else cast(max(ordered_at) as date)
    end as as_of_date
from {{ ref('stg_shop__orders') }}
{% endif %}
