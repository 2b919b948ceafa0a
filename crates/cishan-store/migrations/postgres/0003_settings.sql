-- Facts about this deployment that must stay fixed, such as the fingerprint of the key that
-- encrypts personal data (so the platform refuses to start with the wrong key file).
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
