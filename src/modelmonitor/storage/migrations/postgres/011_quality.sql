-- Model quality (issue 15): redacted payload samples, window profiles, drift references.
CREATE TABLE IF NOT EXISTS quality_samples (
    event_id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quality_samples_at ON quality_samples (service, at);

CREATE TABLE IF NOT EXISTS quality_profiles (
    id BIGSERIAL PRIMARY KEY,
    service TEXT NOT NULL,
    bucket DOUBLE PRECISION NOT NULL,
    profile BYTEA NOT NULL
);
CREATE INDEX IF NOT EXISTS quality_profiles_bucket ON quality_profiles (service, bucket);

CREATE TABLE IF NOT EXISTS quality_references (
    service TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    source TEXT NOT NULL,
    profile BYTEA NOT NULL,
    PRIMARY KEY (service, name)
);
