//! Webhook delivery: one worker POSTs events in publication order; a failed event is retried in
//! the background (after 100 ms, 500 ms, 2 s) so it does not hold up the rest. While paused,
//! published events wait in a queue that tests release in order or newest first.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::clock::unix_now;
use crate::config::WebhookTarget;
use crate::events::{Attempt, EventLog, signature_header};

const RETRY_DELAYS: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(500),
    Duration::from_secs(2),
];

/// The events that are published but held back.
#[derive(Default)]
struct Gate {
    paused: bool,
    queued: Vec<String>,
}

/// Hands events to the delivery worker, or queues them while paused.
pub struct Delivery {
    gate: Mutex<Gate>,
    tx: mpsc::UnboundedSender<String>,
}

impl Delivery {
    /// Starts the worker; it reads bodies from and records attempts in `log`. Fails if the HTTP
    /// client cannot be built.
    pub fn start(target: Option<WebhookTarget>, log: Arc<Mutex<EventLog>>) -> reqwest::Result<Self> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(Sender { target, client, log }, rx));
        Ok(Self {
            gate: Mutex::default(),
            tx,
        })
    }

    /// Sends event `id` now, or queues it while paused.
    pub fn publish(&self, id: String) {
        let mut gate = self.gate();
        if gate.paused {
            gate.queued.push(id);
        } else {
            self.send(id);
        }
    }

    /// Sends event `id` again (with a fresh signature), paused or not.
    pub fn resend(&self, id: String) {
        self.send(id);
    }

    pub fn pause(&self) {
        self.gate().paused = true;
    }

    /// Unpauses and sends the queued events in publication order; answers how many.
    pub fn resume(&self) -> usize {
        let mut gate = self.gate();
        gate.paused = false;
        let queued = std::mem::take(&mut gate.queued);
        let count = queued.len();
        queued.into_iter().for_each(|id| self.send(id));
        count
    }

    /// Sends the queued events newest first and stays paused; answers how many.
    pub fn deliver_reversed(&self) -> usize {
        let queued = std::mem::take(&mut self.gate().queued);
        let count = queued.len();
        queued.into_iter().rev().for_each(|id| self.send(id));
        count
    }

    fn send(&self, id: String) {
        // The worker lives as long as the process; a send can fail only while it shuts down.
        if self.tx.send(id).is_err() {
            tracing::warn!("webhook worker has stopped");
        }
    }

    fn gate(&self) -> std::sync::MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn run(sender: Sender, mut rx: mpsc::UnboundedReceiver<String>) {
    while let Some(id) = rx.recv().await {
        if !sender.attempt(&id).await {
            let sender = sender.clone();
            tokio::spawn(async move {
                for delay in RETRY_DELAYS {
                    tokio::time::sleep(delay).await;
                    if sender.attempt(&id).await {
                        break;
                    }
                }
            });
        }
    }
}

#[derive(Clone)]
struct Sender {
    target: Option<WebhookTarget>,
    client: reqwest::Client,
    log: Arc<Mutex<EventLog>>,
}

impl Sender {
    /// One signed POST of event `id`; true when done (a 2xx, or nowhere to send it).
    async fn attempt(&self, id: &str) -> bool {
        let (Some(target), Some(body)) = (&self.target, self.log().body(id)) else {
            return true;
        };
        let at = unix_now();
        let result = self
            .client
            .post(&target.url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("User-Agent", "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
            .header("Stripe-Signature", signature_header(&target.secret, at, &body))
            .body(body)
            .send()
            .await;
        let outcome = result.map(|r| r.status().as_u16()).map_err(|e| e.to_string());
        let done = matches!(outcome, Ok(200..=299));
        tracing::info!(event = id, ?outcome, "webhook attempt");
        self.log().record(id, Attempt { at, outcome });
        done
    }

    fn log(&self) -> std::sync::MutexGuard<'_, EventLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
