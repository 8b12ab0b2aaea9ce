{#-
    Check every var before anything runs (the project's on-run-start hook; hooks are rendered
    when dbt parses the project, so a bad value stops the invocation before any SQL runs). The
    models check the vars they use again, with the same macros, where they use them. A bad value
    is one compile error naming the var and the value.
-#}
{% macro validate_vars() -%}
    {#- the raw tables and their columns -#}
    {%- for table in ['customers', 'orders', 'order_items', 'products', 'events'] -%}
        {%- do raw_relation(table) -%}
        {%- do column_map(table) -%}
    {%- endfor -%}
    {#- dates -#}
    {%- if var('as_of', none) is not none -%}{%- do sql_date(var('as_of'), 'as_of') -%}{%- endif -%}
    {%- do min_valid_date() -%}
    {#- values compared with the data -#}
    {%- for name in ['non_purchase_statuses', 'returned_statuses', 'cancelled_statuses'] -%}
        {%- do text_list_var(name) -%}
    {%- endfor -%}
    {%- do event_type_columns() -%}
    {%- for name in ['view_event', 'cart_event', 'purchase_event'] -%}
        {%- do checked_text(var(name), name) -%}
    {%- endfor -%}
    {#- numbers -#}
    {%- do max_categories() -%}
    {%- do customer_key_type() -%}
    {%- do interaction_weights() -%}
    {%- do interaction_half_life() -%}
    {%- do sql_integer(var('horizon_days', 90), 'horizon_days', 1, 36500) -%}
    {#- the ml models' settings (none, or the text 'none'/'null', when unset) -#}
    {%- set unset = [none, '', 'none', 'None', 'null'] -%}
    {%- for name in ['synth_rows', 'synth_epochs', 'synth_max_steps', 'synth_batch_size',
                     'segments_k', 'segment_epochs', 'recommendations_k'] -%}
        {%- if var(name, none) not in unset -%}
            {%- do sql_integer(var(name), name, 1, 1000000000) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if var('random_state', none) not in unset -%}
        {%- do sql_integer(var('random_state'), 'random_state', 0, 4294967295) -%}
    {%- endif -%}
    {%- set k_range = var('segments_k_range', none) -%}
    {%- if k_range not in unset -%}
        {%- set m = modules.re.fullmatch('([0-9]{1,6}):([0-9]{1,6})', k_range | string) -%}
        {%- if k_range is not string or not m
            or (m.group(1) | int) < 1 or (m.group(1) | int) > (m.group(2) | int) -%}
            {{ var_error('segments_k_range', k_range, "lo:hi with 1 <= lo <= hi, e.g. 3:12") }}
        {%- endif -%}
    {%- endif -%}
    {%- set source_table = var('synth_source_table', none) -%}
    {%- if source_table not in unset -%}
        {%- if source_table is not string
            or not modules.re.fullmatch('([A-Za-z_][A-Za-z0-9_]*[.])?[A-Za-z_][A-Za-z0-9_]*', source_table) -%}
            {{ var_error('synth_source_table', source_table, "schema.table of letters, digits and underscores") }}
        {%- endif -%}
    {%- endif -%}
    {%- for name in ['synth_label', 'recommender', 'currency'] -%}
        {%- if var(name, none) not in unset -%}{%- do checked_text(var(name), name) -%}{%- endif -%}
    {%- endfor -%}
{%- endmacro %}
