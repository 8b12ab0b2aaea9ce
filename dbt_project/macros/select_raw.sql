{#-
    Select the input-contract columns of a raw table, applying the `column_map` var.
    A missing optional column becomes null; a missing required column is a clear error.
    A missing optional table yields an empty result (and a log line) so that the features
    that need it are skipped instead of failing the build.
    `columns` is a list of [name, required] pairs. The raw table's name is checked
    (raw_relation) and mapped column names are quoted with their quotes escaped (sql_identifier).
-#}
{% macro select_raw(table, columns) -%}
    {%- set relation = raw_relation(table) -%}
    {%- set mapping = column_map(table) -%}
    {%- set existing = load_relation(relation) if execute else none -%}
    {%- if execute and existing is none %}
        {%- if table in ['orders'] -%}
            {{ exceptions.raise_compiler_error("pyprofile: required table " ~ relation ~ " does not exist; load it with `pyprofile load` or set the raw_schema/raw_tables vars") }}
        {%- endif -%}
        {{ log("pyprofile: optional table " ~ relation ~ " not found; features that need it are skipped", info=true) }}
        select
        {%- for col in columns %}
            cast(null as {{ dbt.type_string() }}) as {{ col[0] }}{{ "," if not loop.last }}
        {%- endfor %}
        where 1 = 0
    {%- else -%}
        {%- set available = [] -%}
        {%- if execute -%}
            {%- for c in adapter.get_columns_in_relation(existing) -%}
                {%- do available.append(c.name | lower) -%}
            {%- endfor -%}
        {%- endif %}
        select
        {%- for col in columns %}
            {%- set raw_name = mapping.get(col[0], col[0]) %}
            {%- if not execute or (raw_name | lower) in available %}
            {{ sql_identifier(raw_name, 'column_map.' ~ table ~ '.' ~ col[0]) }} as {{ col[0] }}
            {%- elif col[1] -%}
                {{ exceptions.raise_compiler_error("pyprofile: table " ~ relation ~ " lacks required column '" ~ raw_name ~ "' (it has: " ~ available | join(', ') ~ "); map it with the column_map var or `pyprofile load --map`") }}
            {%- else %}
            cast(null as {{ dbt.type_string() }}) as {{ col[0] }}
            {%- endif %}{{ "," if not loop.last }}
        {%- endfor %}
        from {{ relation }}
    {%- endif -%}
{%- endmacro %}
