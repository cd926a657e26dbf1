//! The Stripe calls the control plane makes, through async-stripe against `STRIPE_API_BASE`.

use std::collections::HashMap;

use stripe::{Client, ClientBuilder, StripeError};
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice::ListInvoice;
use stripe_billing::subscription::{
    CancelSubscription, RetrieveSubscription, UpdateSubscription, UpdateSubscriptionItems,
    UpdateSubscriptionProrationBehavior,
};
use stripe_billing::{Invoice, Subscription};
use stripe_checkout::CheckoutSessionMode;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
};
use stripe_core::customer::CreateCustomer;

use crate::settings::StripeSettings;

/// A Stripe client for one deployment.
#[derive(Clone)]
pub struct StripeApi {
    client: Client,
    pub settings: StripeSettings,
}

fn tenant_metadata(tenant: &str) -> HashMap<String, String> {
    HashMap::from([("tenant_id".to_owned(), tenant.to_owned())])
}

impl StripeApi {
    pub fn new(settings: StripeSettings) -> Result<Self, StripeError> {
        let client = ClientBuilder::new(settings.secret_key.as_str())
            .url(settings.api_base.as_str())
            .build()?;
        Ok(Self { client, settings })
    }

    /// Creates the tenant's customer.
    pub async fn create_customer(&self, tenant: &str, email: &str, name: &str) -> Result<String, StripeError> {
        let customer = CreateCustomer::new()
            .email(email)
            .name(name)
            .metadata(tenant_metadata(tenant))
            .send(&self.client)
            .await?;
        Ok(customer.id.to_string())
    }

    /// A Checkout Session in subscription mode for `price`; returns its URL (Stripe always sends
    /// one for a hosted session; `None` only if it did not).
    pub async fn checkout(&self, tenant: &str, customer: &str, price: &str) -> Result<Option<String>, StripeError> {
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(price.to_owned());
        item.quantity = Some(1);
        let mut subscription = CreateCheckoutSessionSubscriptionData::new();
        subscription.metadata = Some(tenant_metadata(tenant));
        let success = format!("{}?checkout=success", self.settings.return_url);
        let cancel = format!("{}?checkout=cancelled", self.settings.return_url);
        let session = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(customer)
            .line_items(vec![item])
            .success_url(success.as_str())
            .cancel_url(cancel.as_str())
            .client_reference_id(tenant)
            .metadata(tenant_metadata(tenant))
            .subscription_data(subscription)
            .send(&self.client)
            .await?;
        Ok(session.url)
    }

    pub async fn subscription(&self, id: &str) -> Result<Subscription, StripeError> {
        RetrieveSubscription::new(id).send(&self.client).await
    }

    /// Moves the subscription's item to `price`, prorated.
    pub async fn change_price(&self, subscription: &Subscription, price: &str) -> Result<Subscription, StripeError> {
        let mut item = UpdateSubscriptionItems::new();
        item.id = subscription.items.data.first().map(|i| i.id.to_string());
        item.price = Some(price.to_owned());
        UpdateSubscription::new(subscription.id.as_str())
            .items(vec![item])
            .proration_behavior(UpdateSubscriptionProrationBehavior::CreateProrations)
            .send(&self.client)
            .await
    }

    /// Cancels a subscription at once.
    pub async fn cancel(&self, id: &str) -> Result<Subscription, StripeError> {
        CancelSubscription::new(id).send(&self.client).await
    }

    /// A customer portal session; returns its URL.
    pub async fn portal(&self, customer: &str) -> Result<String, StripeError> {
        let session = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(self.settings.return_url.as_str())
            .send(&self.client)
            .await?;
        Ok(session.url)
    }

    pub async fn invoices(&self, customer: &str) -> Result<Vec<Invoice>, StripeError> {
        Ok(ListInvoice::new()
            .customer(customer)
            .limit(20)
            .send(&self.client)
            .await?
            .data)
    }
}
