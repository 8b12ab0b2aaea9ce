{#-
    The spend-share columns for `categories` (category_values): a list of [slug, [categories]]
    pairs, one per `category_<slug>_share` column. Categories whose names make the same slug
    (e.g. "kids' toys" and "kids toys") share one column. When the list is capped at
    max_categories, `category_other_share` takes the rest, including a category whose slug is
    `other`.
-#}
{% macro category_columns(categories) -%}
    {%- set capped = categories | length >= max_categories() -%}
    {%- set slugs, groups = [], {} -%}
    {%- for c in categories -%}
        {%- set s = slug(c) -%}
        {%- if not (capped and s == 'other') -%}
            {%- if s not in groups -%}
                {%- do slugs.append(s) -%}
                {%- do groups.update({s: []}) -%}
            {%- endif -%}
            {%- do groups[s].append(c) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- set out = [] -%}
    {%- for s in slugs -%}{%- do out.append([s, groups[s]]) -%}{%- endfor -%}
    {{ return(out) }}
{%- endmacro %}
