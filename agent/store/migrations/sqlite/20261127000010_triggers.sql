-- Durable sync requests. A webhook is acknowledged only after its delivery id and the sources it
-- asks for are committed here, so a restart (or another replica) still runs what was asked for;
-- a request is cleared only by a pass that started after it arrived.
CREATE TABLE pending_syncs (
    source       TEXT PRIMARY KEY,
    reason       TEXT NOT NULL,
    requested_at BIGINT NOT NULL
);

-- Delivery ids seen recently, so GitHub's redeliveries (manual or automatic) do not run twice.
CREATE TABLE webhook_deliveries (
    delivery_id TEXT PRIMARY KEY,
    event       TEXT NOT NULL,
    received_at BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_received ON webhook_deliveries (received_at);
