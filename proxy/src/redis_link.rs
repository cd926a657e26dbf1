//! The proxy's one Redis connection (a multiplexing `ConnectionManager`), made on first use inside
//! the runtime that serves requests (it spawns a task on the runtime that creates it), with
//! timeouts short enough that Redis trouble never hangs a request.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::OnceCell;

/// Redis could not be reached in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("redis unavailable")]
pub struct RedisDown;

/// A lazily connected Redis client.
pub struct RedisLink {
    client: redis::Client,
    connection: OnceCell<ConnectionManager>,
    /// The bound on one call (connect, command).
    pub timeout: Duration,
}

impl RedisLink {
    pub fn new(url: &str, timeout: Duration) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(url)?,
            connection: OnceCell::new(),
            timeout,
        })
    }

    /// The shared connection, connecting on first use.
    pub async fn connection(&self) -> Result<ConnectionManager, RedisDown> {
        let make = || async {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout))
                .set_number_of_retries(1);
            match tokio::time::timeout(self.timeout * 5, self.client.get_connection_manager_with_config(config)).await {
                Ok(Ok(manager)) => Ok(manager),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "redis connection failed");
                    Err(RedisDown)
                }
                Err(_) => Err(RedisDown),
            }
        };
        self.connection.get_or_try_init(make).await.cloned()
    }
}
