//! Writing a tenant's entitlement to Redis, replacing the previous one in one transaction, so a
//! proxy never reads half of it.

use asf_core::entitlement::Entitlement;
use asf_core::keyspace::Keyspace;
use redis::aio::ConnectionManager;

pub async fn publish(
    redis: &mut ConnectionManager,
    keys: &Keyspace,
    tenant_id: &str,
    entitlement: &Entitlement,
) -> redis::RedisResult<()> {
    let key = keys.entitlement(tenant_id);
    let mut pipe = redis::pipe();
    pipe.atomic().cmd("DEL").arg(&key).ignore();
    let mut hset = redis::cmd("HSET");
    hset.arg(&key);
    for (field, value) in entitlement.fields() {
        hset.arg(field).arg(value);
    }
    pipe.add_command(hset).ignore();
    pipe.query_async(redis).await
}
