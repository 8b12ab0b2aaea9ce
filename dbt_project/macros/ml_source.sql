{#-
    An ml output table, or an empty stand-in with the given [name, type] columns when the step
    that writes it was skipped (e.g. no order lines to recommend from), so the marts still build.
    The stand-in's columns carry the real table's types (never DuckDB's NULL type).
-#}
{% macro ml_source(table, columns) -%}
    {%- set relation = source('ml', table) -%}
    {#- ask the database, not dbt's relation cache: the library writes these tables itself;
        the names are values here, so they go in as escaped string literals -#}
    {%- set missing = false -%}
    {%- if execute -%}
        {%- set query -%}
            select count(*)
            from information_schema.tables
            where
                table_schema = {{ sql_string(relation.schema) }}
                and table_name = {{ sql_string(relation.identifier) }}
                {%- if relation.database %}
                and table_catalog = {{ sql_string(relation.database) }}
                {%- endif %}
        {%- endset -%}
        {%- set missing = run_query(query).columns[0].values()[0] == 0 -%}
    {%- endif -%}
    {%- if missing -%}
        {{ log("pyprofile: " ~ relation ~ " does not exist; its columns are null in the marts", info=true) }}
        (
            select
            {%- for col in columns %}
                cast(null as {{ col[1] }}) as {{ adapter.quote(col[0]) }}{{ "," if not loop.last }}
            {%- endfor %}
            where 1 = 0
        )
    {%- else -%}
        {{ relation }}
    {%- endif -%}
{%- endmacro %}
