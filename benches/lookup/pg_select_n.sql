-- pgbench, variant "surrogate": one person by `n`, an integer row number with
-- a unique B-tree index (the shape of `pgbench -S` on pgbench_accounts), one
-- index probe per statement. The items are the ones the Tongban lookup asks
-- for. Needs -D rows=N.
\set n random(1, :rows)
SELECT citizen_id, name, gender, residence_address FROM tongban_bench_people WHERE n = :n;
