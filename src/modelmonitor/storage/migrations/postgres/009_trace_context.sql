-- W3C trace context of each request, when its service propagates traces: the request
-- log links to the trace, and spans exported over OTLP join the caller's trace.
ALTER TABLE events
    ADD COLUMN IF NOT EXISTS trace_id text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS span_id text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS parent_span_id text NOT NULL DEFAULT '';
