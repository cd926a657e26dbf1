-- Identity: tenants, users synced from Ajax, refresh-token families, signing keys.

create table tenants (
    id uuid primary key,
    name text not null,
    kind text not null check (kind in ('personal', 'organisation')),
    plan text not null default 'free',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table users (
    id uuid primary key,
    ajax_user_id text not null unique,
    email text not null,
    role text not null default 'user' check (role in ('user', 'admin')),
    status text not null default 'active' check (status in ('active', 'suspended')),
    tenant_id uuid not null references tenants (id),
    last_login_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index users_email_idx on users (lower(email));
create index users_tenant_idx on users (tenant_id);

-- One family per login; each refresh rotates the family's current token. A token presented that is
-- not the family's current one is a reuse: the family is revoked.
create table refresh_families (
    id uuid primary key,
    user_id uuid not null references users (id) on delete cascade,
    current_hash bytea not null,
    generation integer not null default 0,
    expires_at timestamptz not null,
    revoked_at timestamptz,
    revoked_reason text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index refresh_families_user_idx on refresh_families (user_id);

-- Tokens previously issued in a family, kept so a reuse can be recognised as such.
create table refresh_tokens_used (
    token_hash bytea primary key,
    family_id uuid not null references refresh_families (id) on delete cascade,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

-- Ed25519 signing keys. The private key is sealed with ASF_SECRETS_KEY.
create table signing_keys (
    kid text primary key,
    public_key bytea not null,
    private_key_sealed text not null,
    -- published from creation; signs from activates_at; dropped from the JWKS after retires_at
    activates_at timestamptz not null,
    retires_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
