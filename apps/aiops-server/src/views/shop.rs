//! The demo shop's answers.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// `GET /health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct ShopHealth {
    /// Always `healthy` when the server answers.
    pub status: &'static str,
    /// The demo shop's service name.
    pub service: &'static str,
    /// Server version.
    pub version: &'static str,
}

/// One item in stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct StockItem {
    /// Stock keeping unit.
    pub sku: &'static str,
    /// What it is.
    pub name: &'static str,
    /// How many are in stock.
    pub in_stock: u32,
}

/// `GET /inventory`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Inventory {
    /// Whether anything is in stock.
    pub available: bool,
    /// The items.
    pub items: Vec<StockItem>,
}

/// `POST /payment`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Payment {
    /// Always `approved`.
    pub status: &'static str,
    /// `TX-` and 32 hex digits.
    pub transaction_id: String,
    /// The amount charged.
    pub amount: f64,
    /// ISO 4217 currency code.
    pub currency: String,
}

/// `POST /checkout`.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Checkout {
    /// Always `completed`.
    pub status: &'static str,
    /// `ORD-` and 32 hex digits.
    pub order_id: String,
    /// The answer of `GET /inventory`, as received.
    #[schema(value_type = Object)]
    pub inventory: Value,
    /// The answer of `POST /payment`, as received.
    #[schema(value_type = Object)]
    pub payment: Value,
}
