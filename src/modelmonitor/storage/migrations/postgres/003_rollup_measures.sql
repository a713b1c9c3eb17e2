-- The measures added to the Aggregate after the first schema (LLM tokens, cost,
-- time to first token, finish reasons, ...) travel in one MessagePack blob per
-- rollup row, so a new measure needs no migration (see modelmonitor/aggregate.py).
ALTER TABLE rollups ADD COLUMN IF NOT EXISTS measures bytea NOT NULL DEFAULT ''::bytea;
