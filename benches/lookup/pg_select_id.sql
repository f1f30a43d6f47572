-- pgbench, variant "citizen_id": one person by its primary key citizen_id,
-- the key Tongban is asked by. pgbench variables are numbers only, so the ID
-- is taken from the sampled-keys table by a random number inside the same
-- statement: two index probes (int, then the text primary key), one round
-- trip. Needs -D keys=K.
\set k random(1, :keys)
SELECT citizen_id, name, gender, residence_address FROM tongban_bench_people
 WHERE citizen_id = (SELECT citizen_id FROM tongban_bench_keys WHERE n = :k);
