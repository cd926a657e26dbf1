//! What a fake is set up with: its prices and where its webhooks go.

use std::fmt;
use std::str::FromStr;

/// The currency of every price, subscription and invoice.
pub const CURRENCY: &str = "eur";

/// A monthly recurring price: `id=nickname[:unit_amount]`, e.g. `price_pro=pro:1900` (cents).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceSpec {
    pub id: String,
    pub nickname: String,
    pub unit_amount: i64,
}

impl PriceSpec {
    /// The product the price belongs to: `prod_{nickname}`.
    pub fn product(&self) -> String {
        format!("prod_{}", self.nickname)
    }
}

impl FromStr for PriceSpec {
    type Err = String;

    /// Fails unless the text is `ID=NICKNAME` or `ID=NICKNAME:CENTS`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("expected ID=NICKNAME[:CENTS], got {text:?}");
        let (id, rest) = text.split_once('=').ok_or_else(bad)?;
        let (nickname, amount) = rest.split_once(':').map_or((rest, None), |(n, a)| (n, Some(a)));
        let unit_amount = match amount {
            Some(amount) => amount.parse().map_err(|_| bad())?,
            None => 1000,
        };
        if id.is_empty() || nickname.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            id: id.to_owned(),
            nickname: nickname.to_owned(),
            unit_amount,
        })
    }
}

/// The endpoint events are POSTed to, and the secret they are signed with.
#[derive(Clone)]
pub struct WebhookTarget {
    pub url: String,
    pub secret: String,
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The checked configuration of one fake.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub prices: Vec<PriceSpec>,
    /// Without one, events are recorded (`GET /_test/events`) but not sent.
    pub webhook: Option<WebhookTarget>,
}

impl FakeConfig {
    /// The price with this id, if configured.
    pub fn price(&self, id: &str) -> Option<&PriceSpec> {
        self.prices.iter().find(|p| p.id == id)
    }
}

/// `price_basic=basic:900`, `price_pro=pro:1900`, `price_premium=premium:4900`.
pub fn default_prices() -> Vec<PriceSpec> {
    [
        ("price_basic", "basic", 900),
        ("price_pro", "pro", 1900),
        ("price_premium", "premium", 4900),
    ]
    .into_iter()
    .map(|(id, nickname, unit_amount)| PriceSpec {
        id: id.into(),
        nickname: nickname.into(),
        unit_amount,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_spec_takes_an_optional_amount() {
        let pro: PriceSpec = "price_pro=pro:1900".parse().expect("parses");
        assert_eq!(
            (pro.id.as_str(), pro.nickname.as_str(), pro.unit_amount),
            ("price_pro", "pro", 1900)
        );
        assert_eq!("price_x=x".parse::<PriceSpec>().map(|p| p.unit_amount), Ok(1000));
        assert!("price_x".parse::<PriceSpec>().is_err());
        assert!("price_x=x:ten".parse::<PriceSpec>().is_err());
    }

    #[test]
    fn webhook_secret_is_not_shown_by_debug() {
        let target = WebhookTarget {
            url: "http://h".into(),
            secret: "whsec_s3cret".into(),
        };
        assert!(!format!("{target:?}").contains("s3cret"));
    }
}
