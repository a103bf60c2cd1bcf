{#-
  Fault injection for the local dbt Cloud emulator.

  DBT_EMULATOR_FAULTS holds a comma-separated list of node names. A node is faulted when the list
  holds any of its keys: its name (`stg_orders`, `test_basic`), its relation name (`dim_customers_v1`,
  `utils_calendar`), `<package>.<name>` (`shop_utils.calendar`), its unique_id, or its unique_id
  without the resource type and package (`dim_customers.v1`, `stg_orders.test_basic`).
  Faulted models, seeds and snapshots error; faulted data tests and unit tests fail.
-#}

{#- An entry may carry the error message to raise: `stg_orders=could not connect to server`. -#}
{% macro emulator_fault_entries() -%}
  {%- set entries = {} -%}
  {%- for entry in env_var('DBT_EMULATOR_FAULTS', '').split(',') -%}
    {%- set name, _, message = entry.partition('=') -%}
    {%- if name.strip() -%}{%- do entries.update({name.strip(): message.strip()}) -%}{%- endif -%}
  {%- endfor -%}
  {{- return(entries) -}}
{%- endmacro %}

{% macro emulator_faults() -%}
  {{- return(emulator_fault_entries().keys() | list) -}}
{%- endmacro %}

{% macro emulator_fault_message(node) -%}
  {%- set entries = emulator_fault_entries() -%}
  {%- for key in emulator_fault_keys(node) -%}
    {%- if entries.get(key) -%}{{- return(entries[key]) -}}{%- endif -%}
  {%- endfor -%}
  {{- return('injected fault: ' ~ node.unique_id) -}}
{%- endmacro %}

{% macro emulator_fault_keys(node) -%}
  {%- set uid = node.get('unique_id', '') -%}
  {%- set keys = [node.get('name'), uid, node.get('package_name', '') ~ '.' ~ node.get('name'), node.get('alias')] -%}
  {%- do keys.append(uid.split('.')[2:] | join('.')) -%}
  {{- return(keys | reject('none') | list) -}}
{%- endmacro %}

{% macro emulator_is_faulted(node) -%}
  {%- set listed = emulator_faults() -%}
  {%- if not listed or node is none -%}{{- return(false) -}}{%- endif -%}
  {%- for key in emulator_fault_keys(node) -%}
    {%- if key in listed -%}{{- return(true) -}}{%- endif -%}
  {%- endfor -%}
  {{- return(false) -}}
{%- endmacro %}

{% macro emulator_fault_hook() -%}
  {%- if execute and emulator_is_faulted(model) -%}
    select error('{{ emulator_fault_message(model) | replace("'", "''") }}')
  {%- endif -%}
{%- endmacro %}

{# Overrides dbt's test query: a faulted data test reports one extra failure, so it ends `fail`. #}
{% macro default__get_test_sql(main_sql, fail_calc, warn_if, error_if, limit) -%}
  {%- set extra = ' + 1' if emulator_is_faulted(model) else '' -%}
    select
      ({{ fail_calc }}){{ extra }} as failures,
      ({{ fail_calc }}){{ extra }} {{ warn_if }} as should_warn,
      ({{ fail_calc }}){{ extra }} {{ error_if }} as should_error
    from (
      {{ main_sql }}
      {{ "limit " ~ limit if limit != none }}
    ) dbt_internal_test
{%- endmacro %}

{# Overrides dbt's unit test query: a faulted unit test sees no actual rows, so it ends `fail`. #}
{% macro default__get_unit_test_sql(main_sql, expected_fixture_sql, expected_column_names) -%}
  {%- set columns = expected_column_names | join(', ') -%}
with dbt_internal_unit_test_actual as (
  select {{ columns }}, {{ dbt.string_literal("actual") }} as {{ adapter.quote("actual_or_expected") }}
  from (
    {{ main_sql }}
  ) _dbt_internal_unit_test_actual
  {% if emulator_is_faulted(model) %}where false{% endif %}
),
dbt_internal_unit_test_expected as (
  select {{ columns }}, {{ dbt.string_literal("expected") }} as {{ adapter.quote("actual_or_expected") }}
  from (
    {{ expected_fixture_sql }}
  ) _dbt_internal_unit_test_expected
)
select * from dbt_internal_unit_test_actual
union all
select * from dbt_internal_unit_test_expected
{%- endmacro %}

{#-
  Batch faults for microbatch models: `mb_events@2026-11-03` in DBT_EMULATOR_FAULTS fails only the
  batch of mb_events that starts on 2026-11-03 (any key of the node may stand before the `@`).
  Pre-hooks run once per model, not per batch, so the model's SQL ends with this macro's clause.
-#}
{% macro emulator_batch_fault() -%}
  {%- set batch = model.batch if execute and model.batch is defined else none -%}
  {%- if batch and batch.event_time_start -%}
    {%- set day = batch.event_time_start.strftime('%Y-%m-%d') -%}
    {%- set keys = [] -%}
    {%- for key in emulator_fault_keys(model) -%}{%- do keys.append(key ~ '@' ~ day) -%}{%- endfor -%}
    {%- if keys | select('in', emulator_faults()) | list %}
where (select error('injected fault: batch {{ day }} of {{ model.unique_id }}')) is null
    {%- endif -%}
  {%- endif -%}
{%- endmacro %}
