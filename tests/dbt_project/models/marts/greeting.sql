-- Shows the `who` var, so `--vars '{"who": "a b"}'` is visible in the database.
select {{ dbt.string_literal('hello, ' ~ (var('who', 'world') | replace("'", "''"))) }} as greeting
