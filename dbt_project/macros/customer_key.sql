{#-
    The customer key's type everywhere (staging, features, ml, marts): var customer_key_type,
    `varchar` (default: any id) or `bigint` (integer ids stay integers, so they sort 1, 2, 10
    and join to the shop's own integer keys). With `bigint` a raw id that is not an integer is
    rejected ('non-integer customer_id'), never cast into another customer's key.
-#}
{% macro customer_key_type() -%}
    {%- set key_type = var('customer_key_type', 'varchar') | string | lower -%}
    {%- if key_type not in ['varchar', 'bigint'] -%}
        {{ var_error('customer_key_type', var('customer_key_type'), "varchar or bigint") }}
    {%- endif -%}
    {{ return(key_type) }}
{%- endmacro %}

{#- `expr` (a raw customer id) as the customer key: null when it is not a valid key. -#}
{% macro customer_key(expr) -%}
    {%- if customer_key_type() == 'bigint' -%}
        {{ dbt.safe_cast(expr, dbt.type_bigint()) }}
    {%- else -%}
        cast({{ expr }} as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}
