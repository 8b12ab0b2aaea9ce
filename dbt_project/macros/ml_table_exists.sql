{#-
    Whether the ml output table `relation` exists, asking the database rather than dbt's relation
    cache (the library writes these tables itself); names go in as escaped string literals.
-#}
{% macro ml_table_exists(relation) -%}
    {{ return(adapter.dispatch('ml_table_exists', 'pyprofile')(relation)) }}
{%- endmacro %}

{% macro default__ml_table_exists(relation) -%}
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
    {{ return(run_query(query).columns[0].values()[0] > 0) }}
{%- endmacro %}
