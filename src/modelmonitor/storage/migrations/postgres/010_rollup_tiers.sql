-- Downsampling tiers: rollups (per minute), rollups_hour and rollups_day, each with
-- its own retention.
--
-- Plain PostgreSQL: two more tables shaped like "rollups"; the store updates all
-- three in the transaction that stores the events, and at its first connect after
-- this migration fills the new ones from the minute rows stored before it.
--
-- TimescaleDB (extension installed in this database): the three tiers are
-- continuous aggregates instead, minute over the events hypertable, hour over
-- minute and day over hour (hierarchical), real-time (materialized_only = false)
-- so the newest events show at once. Latency sketches are built in SQL with the
-- same logarithmic buckets as modelmonitor.sketch.LatencySketch (relative accuracy
-- 0.005, bucket key ceil(ln(v) / ln(gamma)), "z" counting values <= 1 ns) as a
-- jsonb map key -> count, merged by summing; every other measure of
-- modelmonitor.aggregate (tokens, cost, time to first token, finish reasons) too. Raw events are compressed after an
-- age the store sets (add_compression_policy at connect).

DO $migration$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        CREATE TABLE rollups_hour (LIKE rollups INCLUDING ALL);
        CREATE TABLE rollups_day (LIKE rollups INCLUDING ALL);
        -- Set once the store has filled the new tiers from the minute rollups that
        -- existed before this migration (done in Python: sketches merge there).
        CREATE TABLE rollup_backfill (done_at double precision NOT NULL);
        RETURN;
    END IF;

    CREATE FUNCTION modelmonitor_sketch_add(state jsonb, latency double precision)
    RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT CASE
            WHEN latency IS NULL THEN state
            WHEN latency <= 1e-9 THEN jsonb_set(state, '{z}',
                to_jsonb(coalesce((state->>'z')::bigint, 0) + 1))
            ELSE (SELECT jsonb_set(state, ARRAY[k],
                    to_jsonb(coalesce((state->>k)::bigint, 0) + 1))
                  FROM (SELECT ceil(ln(latency)
                        / ln((1.0::float8 + 0.005::float8) / (1.0::float8 - 0.005::float8)))
                        ::bigint::text AS k) key)
        END
    $fn$;
    CREATE FUNCTION modelmonitor_sketch_merge(a jsonb, b jsonb)
    RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT coalesce(jsonb_object_agg(k, total), '{}'::jsonb)
        FROM (SELECT k, sum(v::bigint) AS total
              FROM (SELECT * FROM jsonb_each_text(coalesce(a, '{}'::jsonb))
                    UNION ALL SELECT * FROM jsonb_each_text(coalesce(b, '{}'::jsonb))) e(k, v)
              GROUP BY k) summed
    $fn$;
    CREATE AGGREGATE modelmonitor_sketch(double precision) (
        SFUNC = modelmonitor_sketch_add, STYPE = jsonb, INITCOND = '{}',
        COMBINEFUNC = modelmonitor_sketch_merge, PARALLEL = SAFE
    );
    CREATE AGGREGATE modelmonitor_sketch_sum(jsonb) (
        SFUNC = modelmonitor_sketch_merge, STYPE = jsonb, INITCOND = '{}',
        COMBINEFUNC = modelmonitor_sketch_merge, PARALLEL = SAFE
    );
    -- Counts per label (finish reasons), the same jsonb map shape.
    CREATE FUNCTION modelmonitor_labels_add(state jsonb, label text)
    RETURNS jsonb LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$
        SELECT CASE WHEN label IS NULL OR label = '' THEN state
            ELSE jsonb_set(state, ARRAY[label], to_jsonb(coalesce((state->>label)::bigint, 0) + 1))
        END
    $fn$;
    CREATE AGGREGATE modelmonitor_labels(text) (
        SFUNC = modelmonitor_labels_add, STYPE = jsonb, INITCOND = '{}',
        COMBINEFUNC = modelmonitor_sketch_merge, PARALLEL = SAFE
    );

    ALTER TABLE events SET (
        timescaledb.compress,
        timescaledb.compress_segmentby = 'service',
        timescaledb.compress_orderby = 'ts DESC, id'
    );

    -- The minute tier replaces the plain table of 001.
    DROP TABLE rollups;
    CREATE MATERIALIZED VIEW rollups
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(interval '1 minute', ts) AS bucket, service, method, route,
        count(*) AS requests,
        count(*) FILTER (WHERE status >= 500 OR error <> '') AS errors,
        count(*) FILTER (WHERE status >= 100 AND status < 200) AS status_1xx,
        count(*) FILTER (WHERE status >= 200 AND status < 300) AS status_2xx,
        count(*) FILTER (WHERE status >= 300 AND status < 400) AS status_3xx,
        count(*) FILTER (WHERE status >= 400 AND status < 500) AS status_4xx,
        count(*) FILTER (WHERE status >= 500 AND status < 600) AS status_5xx,
        count(*) FILTER (WHERE status < 100 OR status >= 600) AS status_err,
        sum(request_bytes) AS request_bytes,
        sum(response_bytes) AS response_bytes,
        sum(latency_seconds) AS latency_sum_seconds,
        min(latency_seconds) AS latency_min,
        max(latency_seconds) AS latency_max,
        modelmonitor_sketch(latency_seconds) AS latency_sketch,
        sum(prompt_tokens)::bigint AS prompt_tokens,
        sum(completion_tokens)::bigint AS completion_tokens,
        count(*) FILTER (WHERE tokens_estimated) AS tokens_estimated,
        count(*) FILTER (WHERE streamed) AS streamed,
        sum(cost_usd) AS cost_usd,
        coalesce(sum(ttft_seconds) FILTER (WHERE ttft_seconds > 0), 0) AS ttft_sum,
        min(ttft_seconds) FILTER (WHERE ttft_seconds > 0) AS ttft_min,
        max(ttft_seconds) FILTER (WHERE ttft_seconds > 0) AS ttft_max,
        modelmonitor_sketch(ttft_seconds) FILTER (WHERE ttft_seconds > 0) AS ttft_sketch,
        modelmonitor_labels(finish_reason) AS finish_reasons
    FROM events
    GROUP BY 1, 2, 3, 4
    WITH NO DATA;

    CREATE MATERIALIZED VIEW rollups_hour
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(interval '1 hour', bucket) AS bucket, service, method, route,
        sum(requests)::bigint AS requests, sum(errors)::bigint AS errors,
        sum(status_1xx)::bigint AS status_1xx, sum(status_2xx)::bigint AS status_2xx,
        sum(status_3xx)::bigint AS status_3xx, sum(status_4xx)::bigint AS status_4xx,
        sum(status_5xx)::bigint AS status_5xx, sum(status_err)::bigint AS status_err,
        sum(request_bytes)::bigint AS request_bytes,
        sum(response_bytes)::bigint AS response_bytes,
        sum(latency_sum_seconds) AS latency_sum_seconds,
        min(latency_min) AS latency_min, max(latency_max) AS latency_max,
        modelmonitor_sketch_sum(latency_sketch) AS latency_sketch,
        sum(prompt_tokens)::bigint AS prompt_tokens,
        sum(completion_tokens)::bigint AS completion_tokens,
        sum(tokens_estimated)::bigint AS tokens_estimated,
        sum(streamed)::bigint AS streamed,
        sum(cost_usd) AS cost_usd,
        sum(ttft_sum) AS ttft_sum, min(ttft_min) AS ttft_min, max(ttft_max) AS ttft_max,
        modelmonitor_sketch_sum(ttft_sketch) AS ttft_sketch,
        modelmonitor_sketch_sum(finish_reasons) AS finish_reasons
    FROM rollups
    GROUP BY 1, 2, 3, 4
    WITH NO DATA;

    CREATE MATERIALIZED VIEW rollups_day
    WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
    SELECT time_bucket(interval '1 day', bucket) AS bucket, service, method, route,
        sum(requests)::bigint AS requests, sum(errors)::bigint AS errors,
        sum(status_1xx)::bigint AS status_1xx, sum(status_2xx)::bigint AS status_2xx,
        sum(status_3xx)::bigint AS status_3xx, sum(status_4xx)::bigint AS status_4xx,
        sum(status_5xx)::bigint AS status_5xx, sum(status_err)::bigint AS status_err,
        sum(request_bytes)::bigint AS request_bytes,
        sum(response_bytes)::bigint AS response_bytes,
        sum(latency_sum_seconds) AS latency_sum_seconds,
        min(latency_min) AS latency_min, max(latency_max) AS latency_max,
        modelmonitor_sketch_sum(latency_sketch) AS latency_sketch,
        sum(prompt_tokens)::bigint AS prompt_tokens,
        sum(completion_tokens)::bigint AS completion_tokens,
        sum(tokens_estimated)::bigint AS tokens_estimated,
        sum(streamed)::bigint AS streamed,
        sum(cost_usd) AS cost_usd,
        sum(ttft_sum) AS ttft_sum, min(ttft_min) AS ttft_min, max(ttft_max) AS ttft_max,
        modelmonitor_sketch_sum(ttft_sketch) AS ttft_sketch,
        modelmonitor_sketch_sum(finish_reasons) AS finish_reasons
    FROM rollups_hour
    GROUP BY 1, 2, 3, 4
    WITH NO DATA;

    -- Background refreshes keep the recent past materialized; the store refreshes
    -- older ranges itself when it writes events there (a replayed spool, a backfill).
    PERFORM add_continuous_aggregate_policy('rollups',
        start_offset => interval '3 hours', end_offset => interval '1 minute',
        schedule_interval => interval '1 minute');
    PERFORM add_continuous_aggregate_policy('rollups_hour',
        start_offset => interval '2 days', end_offset => interval '1 hour',
        schedule_interval => interval '10 minutes');
    PERFORM add_continuous_aggregate_policy('rollups_day',
        start_offset => interval '7 days', end_offset => interval '1 day',
        schedule_interval => interval '1 hour');

    -- Rows older than a tier's retention stay hidden from reads until their chunks go.
    CREATE TABLE rollup_retention (
        tier text PRIMARY KEY,
        before double precision NOT NULL
    );
END
$migration$;
