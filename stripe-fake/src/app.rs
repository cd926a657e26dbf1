//! The shared state of one fake: configuration, the store, the event log and delivery.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::config::FakeConfig;
use crate::delivery::Delivery;
use crate::events::{Emit, EventLog, envelope};
use crate::objects::new_id;
use crate::store::Store;

pub struct App {
    pub config: FakeConfig,
    /// `http://ADDR`, for the hosted checkout and portal pages' URLs.
    pub base_url: String,
    store: Mutex<Store>,
    log: Arc<Mutex<EventLog>>,
    pub delivery: Delivery,
}

impl App {
    /// Starts the delivery worker too; fails if its HTTP client cannot be built.
    pub fn start(config: FakeConfig, base_url: String) -> reqwest::Result<Arc<Self>> {
        let log = Arc::new(Mutex::new(EventLog::default()));
        let delivery = Delivery::start(config.webhook.clone(), log.clone())?;
        Ok(Arc::new(Self {
            config,
            base_url,
            store: Mutex::default(),
            log,
            delivery,
        }))
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn log(&self) -> MutexGuard<'_, EventLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records each event and hands it to delivery, in order.
    pub fn emit(&self, events: Vec<Emit>, now: i64) {
        for event in events {
            let id = new_id("evt_");
            let body = serde_json::to_string_pretty(&envelope(&id, &event, now)).unwrap_or_default();
            self.log().push(&id, event.kind, body);
            tracing::info!(event = id, kind = event.kind, "event published");
            self.delivery.publish(id);
        }
    }
}
