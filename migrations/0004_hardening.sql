-- A notification written once per cause (e.g. one "payment failed" per Stripe event, however
-- often the event is processed), and the audit chain's head sealed with the chain key.
alter table notifications add column dedupe_key text;
create unique index notifications_dedupe_idx on notifications (user_id, dedupe_key);

-- HMAC (under the audit chain key) of the head and the anchor: rows cut from either end of the
-- chain, with the head or anchor rewritten to match, no longer verify without the key.
alter table audit_chain add column seal bytea;
