-- The example catalog's data: one small synthetic table per dataset of
-- examples/datasets.yaml, made here from generate_series and md5, so every
-- load gives the same rows. No real person, line, enterprise or pipe: the
-- resident IDs and phone numbers have the right shape and nothing else.
-- Loaded into the database `publicdata` by the test bed (as the superuser);
-- the operator gets SELECT with grant option, to build masked views and to
-- grant the columns an approved scenario lists, and nothing more.

-- A deterministic number in [0, n) from a seed and a row number.
CREATE FUNCTION pg_temp.pick(seed text, i int, n int) RETURNS int
  LANGUAGE sql IMMUTABLE
  AS $$ SELECT (('x' || substr(md5(seed || ':' || i), 1, 8))::bit(32)::bigint % n)::int $$;

CREATE SCHEMA transport;
CREATE TABLE transport.bus_ridership (
  line_id      text    NOT NULL,
  stop_id      text    NOT NULL,
  service_date date    NOT NULL,
  boardings    integer NOT NULL,
  PRIMARY KEY (line_id, stop_id, service_date)
);
INSERT INTO transport.bus_ridership
SELECT 'L' || lpad((1 + pg_temp.pick('line', i, 12))::text, 3, '0'),
       'S' || lpad(i::text, 4, '0'),
       date '2026-10-01' + d,
       20 + pg_temp.pick('boardings', i * 100 + d, 900)
FROM generate_series(1, 40) AS i, generate_series(0, 6) AS d;

CREATE SCHEMA market;
CREATE TABLE market.enterprise_registry (
  credit_code                text PRIMARY KEY,
  enterprise_name            text NOT NULL,
  industry                   text NOT NULL,
  registered_capital         numeric(14, 2) NOT NULL,
  legal_representative_id    text NOT NULL,
  legal_representative_phone text NOT NULL
);
INSERT INTO market.enterprise_registry
SELECT '91310000' || upper(substr(md5('credit:' || i), 1, 10)),
       'Example Enterprise No. ' || i || ' Co., Ltd.',
       (ARRAY['Logistics', 'Retail', 'Software', 'Manufacturing', 'Catering'])[1 + pg_temp.pick('industry', i, 5)],
       (1 + pg_temp.pick('capital', i, 5000)) * 1000.00,
       -- 6 digits of region, 8 of birth date, 3 of sequence, 1 check
       -- character: the shape of a resident ID, made up.
       '3101' || lpad(pg_temp.pick('region', i, 100)::text, 2, '0')
         || to_char(date '1960-01-01' + pg_temp.pick('birth', i, 14000), 'YYYYMMDD')
         || lpad(pg_temp.pick('seq', i, 1000)::text, 3, '0')
         || substr('0123456789X', 1 + pg_temp.pick('check', i, 11), 1),
       '13' || lpad(pg_temp.pick('phone', i, 1000000000)::text, 9, '0')
FROM generate_series(1, 120) AS i;

CREATE SCHEMA water;
CREATE TABLE water.water_network (
  pipe_id  text PRIMARY KEY,
  geometry text NOT NULL
);
INSERT INTO water.water_network
SELECT 'P' || lpad(i::text, 5, '0'),
       'LINESTRING(121.' || pg_temp.pick('x', i, 1000) || ' 31.' || pg_temp.pick('y', i, 1000) || ')'
FROM generate_series(1, 50) AS i;

-- The operator reads every table and may pass column grants on; it owns no
-- table and changes no row.
GRANT USAGE ON SCHEMA transport, market, water TO publicdata_operator WITH GRANT OPTION;
GRANT SELECT ON ALL TABLES IN SCHEMA transport, market, water TO publicdata_operator WITH GRANT OPTION;
