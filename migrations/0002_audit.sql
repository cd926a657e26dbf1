-- The audit trail: one row per record, in chain order. `seq` is assigned by the worker under the
-- lock on `audit_chain`, so it has no gaps; `content_hash` and `chain_hash` make edits detectable
-- (see core/src/audit/chain.rs).

create table audit_log (
    seq bigint primary key,
    record_id text not null unique,
    at_ms bigint not null,
    kind text not null,
    user_id text,
    tenant_id text,
    client_ip text,
    method text,
    route text,
    path text,
    route_class text,
    decision text not null,
    status integer not null,
    upstream_status integer,
    queue_wait_ms bigint,
    latency_ms bigint,
    detail text,
    content_hash bytea not null,
    chain_hash bytea not null,
    stored_at timestamptz not null default now()
);
create index audit_log_at_idx on audit_log (at_ms);
create index audit_log_user_idx on audit_log (user_id, seq);
create index audit_log_tenant_idx on audit_log (tenant_id, seq);

-- The chain's head (last record) and its anchor (the last record pruned for retention, from which
-- the remaining records are verified). One row.
create table audit_chain (
    singleton boolean primary key default true check (singleton),
    last_seq bigint not null,
    last_hash bytea not null,
    anchor_seq bigint not null,
    anchor_hash bytea not null,
    updated_at timestamptz not null default now()
);
insert into audit_chain (last_seq, last_hash, anchor_seq, anchor_hash)
values (0, '\x0000000000000000000000000000000000000000000000000000000000000000',
        0, '\x0000000000000000000000000000000000000000000000000000000000000000');
