//! The demo shop's handlers: four endpoints that do a little simulated work. `/checkout` calls
//! `/payment` and `/inventory` over real HTTP on the server's own address and propagates the
//! W3C `traceparent`, so one checkout is one trace of three spans.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpRequest};
use aiops_telemetry_core::TraceParent;
use rand::Rng;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::instrument::RequestSpan;
use super::table::SHOP_SERVICE;
use crate::api_error::ApiError;
use crate::state::AppState;
use crate::views::error::ErrorBody;
use crate::views::shop::{Checkout, Inventory, Payment, ShopHealth, StockItem};

/// The HTTP client `/checkout` uses to call its dependencies on the server's own address.
/// One per worker thread, so connections stay on the runtime that opened them.
#[derive(Clone, Debug)]
pub struct ShopClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl ShopClient {
    /// A client for the shop at `base_url` (e.g. `http://127.0.0.1:5000`) that gives up on a
    /// dependency after `timeout`.
    pub fn new(base_url: String, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self {
            http,
            base_url,
            timeout,
        })
    }
}

/// `GET /health`: answers at once.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "shopHealth",
    tag = "shop",
    responses(
        (status = 200, description = "The shop is up", body = ShopHealth),
        (status = 500, description = "A failure injected by chaos", body = ErrorBody),
    )
)]
pub async fn health() -> web::Json<ShopHealth> {
    web::Json(ShopHealth {
        status: "healthy",
        service: SHOP_SERVICE,
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `GET /inventory`: a stock look-up taking about 5-15 ms.
#[utoipa::path(
    get,
    path = "/inventory",
    operation_id = "shopInventory",
    tag = "shop",
    responses(
        (status = 200, description = "Items in stock", body = Inventory),
        (status = 500, description = "A failure injected by chaos", body = ErrorBody),
    )
)]
pub async fn inventory() -> web::Json<Inventory> {
    work(5..=15).await;
    web::Json(Inventory {
        available: true,
        items: vec![
            StockItem {
                sku: "SKU-1001",
                name: "Coffee beans",
                in_stock: 42,
            },
            StockItem {
                sku: "SKU-1002",
                name: "Grinder",
                in_stock: 7,
            },
        ],
    })
}

/// Optional body of `POST /payment`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PaymentRequest {
    /// Amount to charge, greater than 0; random when absent.
    #[schema(exclusive_minimum = 0)]
    amount: Option<f64>,
    /// ISO 4217 currency code, three upper-case letters; `EUR` when absent.
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: Option<String>,
}

/// Optional body of `POST /checkout`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckoutRequest {
    /// Amount to charge, greater than 0, passed on to `/payment`; random when absent.
    #[schema(exclusive_minimum = 0)]
    amount: Option<f64>,
}

/// `POST /payment`: a card authorisation taking about 20-60 ms. The body is optional.
#[utoipa::path(
    post,
    path = "/payment",
    operation_id = "shopPayment",
    tag = "shop",
    request_body(content = Option<PaymentRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "Payment approved", body = Payment),
        (status = 400, description = "Invalid amount, currency or body", body = ErrorBody),
        (status = 500, description = "A failure injected by chaos", body = ErrorBody),
    )
)]
pub async fn payment(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<web::Json<Payment>, ApiError> {
    let payment: Option<PaymentRequest> =
        optional_body(&request, payload, &state, PAYMENT_SHAPE).await?;
    let (amount, currency) = match payment {
        Some(payment) => (payment.amount, payment.currency),
        None => (None, None),
    };
    let amount = validate_amount(amount)?;
    let currency = validate_currency(currency)?;
    work(20..=60).await;
    Ok(web::Json(Payment {
        status: "approved",
        transaction_id: format!("TX-{}", uuid::Uuid::new_v4().simple()),
        amount,
        currency,
    }))
}

/// `POST /checkout`: takes payment, then checks inventory, each over HTTP. Answers 502 when a
/// dependency fails and 504 when one does not answer within the client timeout.
#[utoipa::path(
    post,
    path = "/checkout",
    operation_id = "shopCheckout",
    tag = "shop",
    request_body(content = Option<CheckoutRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "Order completed (payment, then inventory, over HTTP)", body = Checkout),
        (status = 400, description = "Invalid amount or body", body = ErrorBody),
        (status = 500, description = "A failure injected by chaos", body = ErrorBody),
        (status = 502, description = "A dependency failed", body = ErrorBody),
        (status = 504, description = "A dependency did not answer in time", body = ErrorBody),
    )
)]
pub async fn checkout(
    request: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    client: web::Data<ShopClient>,
) -> Result<web::Json<Checkout>, ApiError> {
    let order: Option<CheckoutRequest> =
        optional_body(&request, payload, &state, CHECKOUT_SHAPE).await?;
    let amount = validate_amount(order.and_then(|order| order.amount))?;
    let traceparent = request
        .extensions()
        .get::<RequestSpan>()
        .map(|span| TraceParent::new(span.trace_id, span.span_id).to_string());

    // Payment first, then inventory, as docs/API.md describes the checkout; the first failure
    // ends the checkout.
    let payment_body = json!({ "amount": amount });
    let payment = call(
        &client,
        reqwest::Method::POST,
        "/payment",
        Some(payment_body),
        &traceparent,
    )
    .await?;
    let inventory = call(
        &client,
        reqwest::Method::GET,
        "/inventory",
        None,
        &traceparent,
    )
    .await?;
    Ok(web::Json(Checkout {
        status: "completed",
        order_id: format!("ORD-{}", uuid::Uuid::new_v4().simple()),
        inventory,
        payment,
    }))
}

/// Calls one dependency of `/checkout`, mapping its failure to 502 or 504.
async fn call(
    client: &ShopClient,
    method: reqwest::Method,
    path: &'static str,
    body: Option<Value>,
    traceparent: &Option<String>,
) -> Result<Value, ApiError> {
    let mut builder = client
        .http
        .request(method, format!("{}{path}", client.base_url));
    if let Some(header) = traceparent {
        builder = builder.header(TraceParent::HEADER, header);
    }
    if let Some(body) = body {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
    }
    let timeout_ms = client.timeout.as_millis();
    let response = builder.send().await.map_err(|err| {
        if err.is_timeout() {
            dependency_timed_out(path, timeout_ms)
        } else {
            dependency_failed(path, None, format!("{path} is unreachable: {err}"))
        }
    })?;
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|err| {
        if err.is_timeout() {
            dependency_timed_out(path, timeout_ms)
        } else {
            dependency_failed(
                path,
                Some(status),
                format!("reading {path}'s answer: {err}"),
            )
        }
    })?;
    if !(200..300).contains(&status) {
        return Err(dependency_failed(
            path,
            Some(status),
            format!("{path} answered {status}"),
        ));
    }
    Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn dependency_timed_out(path: &str, timeout_ms: u128) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        format!("dependency timed out: {path} did not answer within {timeout_ms} ms"),
    )
    .with("dependency", json!(path))
    .with("timeout_ms", json!(timeout_ms as u64))
}

fn dependency_failed(path: &str, status: Option<u16>, detail: String) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        format!("dependency failed: {detail}"),
    )
    .with("dependency", json!(path))
    .with("dependency_status", json!(status))
}

const PAYMENT_SHAPE: &str =
    r#"no body, or a JSON object {"amount": number > 0, "currency": "EUR"} (both optional)"#;
const CHECKOUT_SHAPE: &str = r#"no body, or a JSON object {"amount": number > 0} (optional)"#;

/// Reads the whole body (at most the server's body limit) and parses it with
/// [`optional_json`].
async fn optional_body<T: DeserializeOwned>(
    request: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    shape: &str,
) -> Result<Option<T>, ApiError> {
    let body = read_body(payload, state.settings.max_body_bytes).await?;
    optional_json(request, &body, shape)
}

/// Reads the whole body, refusing more than `limit` bytes with 413.
async fn read_body(payload: web::Payload, limit: usize) -> Result<Bytes, ApiError> {
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {error}"
        ))),
        Err(_) => Err(ApiError::payload_too_large(limit)),
    }
}

/// Parses an optional JSON body: an empty body is `None` whatever its content type; any other
/// must be `application/json`, and an object matching `T` or `null`.
fn optional_json<T: DeserializeOwned>(
    request: &HttpRequest,
    body: &Bytes,
    shape: &str,
) -> Result<Option<T>, ApiError> {
    if body.is_empty() {
        return Ok(None);
    }
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let is_json = essence.eq_ignore_ascii_case("application/json")
        || essence.to_ascii_lowercase().ends_with("+json");
    if !is_json {
        return Err(
            ApiError::unsupported_media_type(content_type, &["application/json"])
                .with("accepted_body", json!(shape)),
        );
    }
    let invalid = |detail: String| {
        ApiError::bad_request(format!("invalid JSON body: {detail}; accepted: {shape}"))
            .with("accepted_body", json!(shape))
    };
    // An object, or `null` for none: serde would also read a struct from an array.
    match serde_json::from_slice::<Value>(body).map_err(|err| invalid(err.to_string()))? {
        Value::Null => Ok(None),
        object @ Value::Object(_) => T::deserialize(object)
            .map(Some)
            .map_err(|err| invalid(err.to_string())),
        other => Err(invalid(format!(
            "a JSON {}, not an object",
            json_kind(&other)
        ))),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn validate_amount(amount: Option<f64>) -> Result<f64, ApiError> {
    match amount {
        None => Ok(rand::rng().random_range(1_000..=20_000) as f64 / 100.0),
        // No upper bound: one would be ambiguous for the decimal numbers a JSON body holds
        // within a rounding of it, which f64 cannot tell apart.
        Some(amount) if amount.is_finite() && amount > 0.0 => Ok(amount),
        Some(amount) => Err(ApiError::bad_request(format!(
            "invalid amount {amount}; accepted: a number greater than 0"
        ))
        .with("parameter", json!("amount"))),
    }
}

fn validate_currency(currency: Option<String>) -> Result<String, ApiError> {
    match currency {
        None => Ok("EUR".to_owned()),
        Some(code) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) => Ok(code),
        Some(code) => Err(ApiError::bad_request(format!(
            "invalid currency {code:?}; accepted: a three-letter upper-case ISO 4217 code such as EUR"
        ))
        .with("parameter", json!("currency"))),
    }
}

/// Simulated work: sleeps a random number of milliseconds in `range`.
async fn work(range: std::ops::RangeInclusive<u64>) {
    let millis = rand::rng().random_range(range);
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn empty_body_is_accepted_whatever_its_content_type() {
        let request = TestRequest::default()
            .insert_header((CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .to_http_request();
        let parsed: Option<PaymentRequest> =
            optional_json(&request, &Bytes::new(), PAYMENT_SHAPE).expect("empty is fine");
        assert!(parsed.is_none());
    }

    #[test]
    fn non_json_body_is_unsupported() {
        let request = TestRequest::default()
            .insert_header((CONTENT_TYPE, "text/plain"))
            .to_http_request();
        let error = optional_json::<PaymentRequest>(&request, &Bytes::from("x"), PAYMENT_SHAPE)
            .expect_err("text is rejected");
        assert_eq!(error.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn a_body_is_an_object_or_null_never_an_array() {
        let request = TestRequest::default()
            .insert_header((CONTENT_TYPE, "application/json"))
            .to_http_request();
        let parse = |body: &'static str| {
            optional_json::<PaymentRequest>(&request, &Bytes::from(body), PAYMENT_SHAPE)
        };
        assert!(parse("null").expect("null is no body").is_none());
        let payment = parse(r#"{"amount": 12.5}"#)
            .expect("an object")
            .expect("some");
        assert_eq!(payment.amount, Some(12.5));
        for bad in ["[null, null]", "[]", "12", "\"x\"", "true", " "] {
            let error = parse(bad).expect_err(bad);
            assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    #[test]
    fn amounts_must_be_positive_and_finite() {
        assert!(validate_amount(Some(12.5)).is_ok());
        for bad in [0.0, -1.0, -0.0, f64::NAN, f64::INFINITY] {
            let error = validate_amount(Some(bad)).expect_err("rejected");
            assert!(error.message().contains("accepted"), "{}", error.message());
        }
    }
}
