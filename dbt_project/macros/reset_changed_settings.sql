{#-
    Pre-hook of the incremental models: empty the table when it was built with other settings
    (the vars that shape its rows, fingerprinted in the model's `settings_md5` config and
    column), so the build that follows processes every day again, like a full refresh. Without
    this, changing e.g. event_types or non_purchase_statuses would leave old days stale.
-#}
{% macro reset_changed_settings() -%}
    {{ return(adapter.dispatch('reset_changed_settings', 'pyprofile')()) }}
{%- endmacro %}

{% macro default__reset_changed_settings() -%}
    {%- if is_incremental() -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name')
            | map('lower') | list -%}
        delete from {{ this }}
        {%- if 'settings_md5' in columns %}
        where settings_md5 <> {{ sql_string(config.get('settings_md5')) }}
        {%- endif %}
    {%- endif -%}
{%- endmacro %}
