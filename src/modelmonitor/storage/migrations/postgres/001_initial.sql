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
-- Where the timescaledb extension is available, raw events become a hypertable
-- (1-day chunks) instead; that branch is the only TimescaleDB-specific code.

DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;
        CREATE FUNCTION modelmonitor_start_us(double precision) RETURNS bigint
            LANGUAGE sql IMMUTABLE AS 'SELECT ($1 * 1000000)::bigint';
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
        );
        PERFORM create_hypertable(
            'events', 'start',
            chunk_time_interval => 86400000000,
            time_partitioning_func => 'modelmonitor_start_us'
        );
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
