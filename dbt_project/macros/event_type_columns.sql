{#-
    The event_types var as [event type, slug] pairs, one `<slug>_events` count column each.
    Two types that make the same column name are a compile error naming both.
-#}
{% macro event_type_columns() -%}
    {%- set out, seen = [], {} -%}
    {%- for t in text_list_var('event_types') -%}
        {%- set s = slug(t) -%}
        {%- if s in seen -%}
            {{ exceptions.raise_compiler_error(
                "pyprofile: var event_types lists " ~ tojson(seen[s]) ~ " and " ~ tojson(t)
                ~ ", which both make the column " ~ s ~ "_events; list each event type once") }}
        {%- endif -%}
        {%- do seen.update({s: t}) -%}
        {%- do out.append([t, s]) -%}
    {%- endfor -%}
    {{ return(out) }}
{%- endmacro %}
