{#-
    dbt-spark's dateadd goes through epoch seconds and to_timestamp(number), which yields null
    when timestamps are TIMESTAMP_NTZ (the Spark target's spark.sql.timestampType, so that they
    compare with DuckDB's). timestampadd keeps the value's own type and clock.
-#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    {%- set units = {'day': 'DAY', 'week': 'WEEK', 'month': 'MONTH', 'quarter': 'QUARTER',
                     'year': 'YEAR', 'hour': 'HOUR', 'minute': 'MINUTE', 'second': 'SECOND'} -%}
    {%- if datepart not in units -%}
        {{ exceptions.raise_compiler_error("dateadd on Spark: unsupported datepart " ~ datepart) }}
    {%- endif -%}
    timestampadd({{ units[datepart] }}, {{ interval }}, {{ from_date_or_timestamp }})
{%- endmacro %}
