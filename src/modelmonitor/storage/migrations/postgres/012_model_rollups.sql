-- Per-minute rollups by model and consumer (storage/model_rollups.py): the same value
-- columns as "rollups", keyed by service, minute, model and consumer.

CREATE TABLE model_rollups (
    bucket double precision NOT NULL,
    service text NOT NULL,
    model text NOT NULL,
    consumer text NOT NULL,
    requests bigint NOT NULL,
    errors bigint NOT NULL,
    status_classes jsonb NOT NULL,
    request_bytes bigint NOT NULL,
    response_bytes bigint NOT NULL,
    latency_sum_seconds double precision NOT NULL,
    latency_sketch bytea NOT NULL,
    measures bytea NOT NULL,
    PRIMARY KEY (service, bucket, model, consumer)
);
CREATE INDEX model_rollups_bucket ON model_rollups (bucket);
