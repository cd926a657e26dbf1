-- Plans, the tenant's billing state, vouchers, the Stripe event inbox, and notifications.

-- What each plan allows: the route classes (see core/catalogue/routes.tsv), a request rate, and the
-- Stripe prices that buy it. Editable by admins; `rank` orders plans from cheapest to dearest.
create table plans (
    name text primary key,
    rank integer not null unique,
    classes text[] not null,
    rate_per_minute integer not null check (rate_per_minute > 0),
    stripe_price_ids text[] not null default '{}',
    updated_at timestamptz not null default now()
);
insert into plans (name, rank, classes, rate_per_minute, stripe_price_ids) values
    ('free', 0, '{hub_read}', 30, '{}'),
    ('basic', 1, '{hub_read,read}', 60, '{price_basic}'),
    ('pro', 2, '{hub_read,read,command,panic}', 120, '{price_pro}'),
    ('premium', 3, '{hub_read,read,command,panic,settings}', 240, '{price_premium}');

-- The tenant's Stripe state as last read from Stripe, and its effective plan with the time it may
-- next change (the worker recomputes it then).
alter table tenants
    add column stripe_customer_id text unique,
    add column stripe_subscription_id text unique,
    add column subscription_status text,
    add column subscription_plan text references plans (name),
    add column current_period_end timestamptz,
    add column past_due_since timestamptz,
    add column subscription_ended_at timestamptz,
    add column plan_source text not null default 'free',
    add column plan_changes_at timestamptz,
    add constraint tenants_plan_fk foreign key (plan) references plans (name);
create index tenants_plan_changes_idx on tenants (plan_changes_at) where plan_changes_at is not null;

-- Voucher codes are stored as the SHA-256 of their canonical form, never in clear.
create table vouchers (
    id uuid primary key,
    code_hash bytea not null unique,
    plan text not null references plans (name),
    duration_days integer not null check (duration_days > 0),
    redeem_by timestamptz,
    max_redemptions integer not null default 1 check (max_redemptions > 0),
    redemptions integer not null default 0 check (redemptions <= max_redemptions),
    revoked_at timestamptz,
    batch_id uuid not null,
    created_by uuid references users (id),
    created_at timestamptz not null default now()
);
create index vouchers_batch_idx on vouchers (batch_id);

-- A redemption grants its tenant the voucher's plan for [starts_at, ends_at).
create table voucher_grants (
    id uuid primary key,
    voucher_id uuid not null references vouchers (id),
    tenant_id uuid not null references tenants (id),
    user_id uuid not null references users (id),
    plan text not null references plans (name),
    starts_at timestamptz not null,
    ends_at timestamptz not null check (ends_at > starts_at),
    created_at timestamptz not null default now(),
    unique (voucher_id, user_id)
);
create index voucher_grants_tenant_idx on voucher_grants (tenant_id, ends_at);
create index voucher_grants_user_idx on voucher_grants (user_id);

-- Stripe webhook events: stored once (by event id) on receipt, processed by the worker.
create table stripe_events (
    id text primary key,
    type text not null,
    payload jsonb not null,
    status text not null default 'pending' check (status in ('pending', 'done', 'dead')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    last_error text,
    received_at timestamptz not null default now(),
    processed_at timestamptz
);
create index stripe_events_pending_idx on stripe_events (next_attempt_at) where status = 'pending';

create table notifications (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    kind text not null,
    title text not null,
    body text not null,
    created_at timestamptz not null default now(),
    read_at timestamptz
);
create index notifications_user_idx on notifications (user_id, created_at desc);
