-- Raw events, per-minute rollups and the services seen.
--
-- Raw events are range-partitioned by day on "start" (Unix seconds); the store
-- creates partitions ahead of time and drops whole days for retention. The
-- primary key must contain the partition key, so it is (start, id): an event's
-- start never changes between redeliveries, so (start, id) is unique exactly
-- when id is, and INSERT ... ON CONFLICT (start, id) DO NOTHING deduplicates.
-- Keyed by time first, the same index serves "newest first" listing and takes
-- inserts at its right-hand edge.
--
-- Where the timescaledb extension is installed in the database (CREATE EXTENSION
-- timescaledb, which the timescale/timescaledb image does for POSTGRES_DB), raw
-- events become a hypertable (1-day chunks) on a timestamptz copy of "start"
-- instead, so that continuous aggregates (010_rollup_tiers) can be built on it.

DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        CREATE TABLE events (
            id text COLLATE "C" NOT NULL,
            start double precision NOT NULL,
            service text COLLATE "C" NOT NULL,
            method text NOT NULL,
            route text NOT NULL,
            path text NOT NULL,
            status integer NOT NULL,
            latency_seconds double precision NOT NULL,
            ttfb_seconds double precision NOT NULL,
            request_bytes bigint NOT NULL,
            response_bytes bigint NOT NULL,
            error text NOT NULL,
            model text NOT NULL,
            client text NOT NULL,
            -- to_timestamp(start), set by the store: the hypertable's time column.
            ts timestamptz NOT NULL,
            PRIMARY KEY (ts, id)
        );
        PERFORM create_hypertable('events', 'ts', chunk_time_interval => interval '1 day');
    ELSE
        CREATE TABLE events (
            id text COLLATE "C" NOT NULL,
            start double precision NOT NULL,
            service text COLLATE "C" NOT NULL,
            method text NOT NULL,
            route text NOT NULL,
            path text NOT NULL,
            status integer NOT NULL,
            latency_seconds double precision NOT NULL,
            ttfb_seconds double precision NOT NULL,
            request_bytes bigint NOT NULL,
            response_bytes bigint NOT NULL,
            error text NOT NULL,
            model text NOT NULL,
            client text NOT NULL,
            PRIMARY KEY (start, id)
        ) PARTITION BY RANGE (start);
        -- Catches events outside every daily partition, so an insert never fails.
        CREATE TABLE events_default PARTITION OF events DEFAULT;
    END IF;
END
$migration$;

CREATE INDEX events_service_start ON events (service, start);

CREATE TABLE rollups (
    bucket double precision NOT NULL,
    service text NOT NULL,
    method text NOT NULL,
    route text NOT NULL,
    requests bigint NOT NULL,
    errors bigint NOT NULL,
    status_classes jsonb NOT NULL,
    request_bytes bigint NOT NULL,
    response_bytes bigint NOT NULL,
    latency_sum_seconds double precision NOT NULL,
    latency_sketch bytea NOT NULL,
    PRIMARY KEY (service, bucket, method, route)
);
CREATE INDEX rollups_bucket ON rollups (bucket);

CREATE TABLE services (
    name text PRIMARY KEY,
    first_seen double precision NOT NULL,
    last_seen double precision NOT NULL,
    requests bigint NOT NULL
);
