//! The command line: `stripe-fake --listen ADDR [--webhook-url URL --webhook-secret whsec_...]
//! [--price ID=NICKNAME[:CENTS]]...`, the webhook settings also from `STRIPE_FAKE_*` variables.

use clap::Parser;

use crate::config::{FakeConfig, PriceSpec, WebhookTarget, default_prices};

/// A faithful in-memory fake of the Stripe API calls AjaxSecurFlow makes, with signed webhooks.
// No Debug derive: the struct holds the webhook secret.
#[derive(Parser)]
#[command(name = "stripe-fake", version, about)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port (the real one is printed).
    #[arg(long, env = "STRIPE_FAKE_LISTEN", default_value = "127.0.0.1:12111")]
    pub listen: String,

    /// Where events are POSTed; without it they are only recorded.
    #[arg(long, env = "STRIPE_FAKE_WEBHOOK_URL", requires = "webhook_secret")]
    pub webhook_url: Option<String>,

    /// The endpoint secret events are signed with (the whole string is the HMAC key).
    #[arg(long, env = "STRIPE_FAKE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,

    /// A monthly price, ID=NICKNAME[:CENTS]; repeatable [default: price_basic=basic:900
    /// price_pro=pro:1900 price_premium=premium:4900].
    #[arg(long = "price")]
    pub prices: Vec<PriceSpec>,
}

impl Args {
    /// The checked configuration these arguments describe.
    pub fn config(&self) -> FakeConfig {
        let webhook = self
            .webhook_url
            .clone()
            .zip(self.webhook_secret.clone())
            .map(|(url, secret)| WebhookTarget { url, secret });
        let prices = if self.prices.is_empty() {
            default_prices()
        } else {
            self.prices.clone()
        };
        FakeConfig { prices, webhook }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_to_three_prices_and_no_webhook() {
        let config = Args::parse_from(["stripe-fake"]).config();
        assert_eq!(config.prices, default_prices());
        assert!(config.webhook.is_none());
    }

    #[test]
    fn webhook_url_needs_a_secret() {
        assert!(Args::try_parse_from(["stripe-fake", "--webhook-url", "http://h"]).is_err());
        let args = [
            "stripe-fake",
            "--webhook-url",
            "http://h",
            "--webhook-secret",
            "whsec_x",
            "--price",
            "p=n:5",
        ];
        let config = Args::parse_from(args).config();
        assert_eq!(config.webhook.map(|w| w.secret), Some("whsec_x".into()));
        assert_eq!(config.prices.len(), 1);
    }
}
