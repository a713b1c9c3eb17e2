-- Model-aware event fields (issue 13): who called, which model version and protocol,
-- what was asked, LLM tokens, time to first token, finish reason, streaming and cost.
-- Added with zero defaults so rows stored before keep reading as "not measured".

ALTER TABLE events
    ADD COLUMN consumer text NOT NULL DEFAULT '',
    ADD COLUMN model_version text NOT NULL DEFAULT '',
    ADD COLUMN protocol text NOT NULL DEFAULT '',
    ADD COLUMN task text NOT NULL DEFAULT '',
    ADD COLUMN prompt_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN completion_tokens bigint NOT NULL DEFAULT 0,
    ADD COLUMN tokens_estimated boolean NOT NULL DEFAULT false,
    ADD COLUMN ttft_seconds double precision NOT NULL DEFAULT 0,
    ADD COLUMN finish_reason text NOT NULL DEFAULT '',
    ADD COLUMN streamed boolean NOT NULL DEFAULT false,
    ADD COLUMN cost_usd double precision NOT NULL DEFAULT 0;
