-- Valid customers: typed and de-duplicated; rejected rows are in rejected_rows.
select
    customer_id,
    signup_at,
    birth_date,
    age,
    gender,
    income,
    income_band,
    region,
    channel
from {{ ref('base_shop__customers') }}
where reject_reason is null
