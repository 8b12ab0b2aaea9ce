{#-
    Spark's Parquet tables cannot delete rows: when any row was built with other settings (or
    the table predates the fingerprint), empty the table instead; the settings are global, so
    that is every row DuckDB's delete would remove. The build then rebuilds every day.
-#}
{% macro spark__reset_changed_settings() -%}
    {%- if is_incremental() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name')
            | map('lower') | list -%}
        {%- set stale = true -%}
        {%- if 'settings_md5' in columns -%}
            {%- set query -%}
                select count(*) from {{ this }}
                where settings_md5 <> {{ sql_string(config.get('settings_md5')) }}
            {%- endset -%}
            {%- set stale = run_query(query).columns[0].values()[0] > 0 -%}
        {%- endif -%}
        {%- if stale %}truncate table {{ this }}{% endif -%}
    {%- endif -%}
{%- endmacro %}
