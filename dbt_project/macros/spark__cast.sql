{#-
    dbt's cast on Spark, with the contracts' (marts/_marts.yml) portable VARCHAR read as Spark's
    STRING: Spark refuses VARCHAR without a length (dbt casts null to every contracted type to
    check the contract).
-#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ 'string' if type | trim | lower == 'varchar' else type }})
{%- endmacro %}
