//! Delivery to one receiver: a bounded queue and one task that posts what it holds in order,
//! retrying failures with backoff. A full queue drops the delivery and counts it; nothing here
//! ever waits on the analysis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hmac::{KeyInit, Mac};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::redact_url;

/// Deliveries that may wait for one receiver.
pub const QUEUE_CAPACITY: usize = 256;

/// Attempts per delivery, the first included.
pub const MAX_ATTEMPTS: u32 = 4;

/// The wait before the first retry; it doubles each time.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// How long one attempt may take.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The header of a webhook's signature.
pub const SIGNATURE_HEADER: &str = "X-Aiops-Signature-256";

/// What kind of receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiverKind {
    /// An Alertmanager (`POST /api/v2/alerts`).
    Alertmanager,
    /// A webhook taking Alertmanager's webhook payload.
    Webhook,
}

/// Where and how to deliver.
#[derive(Clone)]
pub struct Receiver {
    /// `alertmanager-1`, `webhook-2`: the name in metrics, logs and timelines.
    pub name: String,
    /// What it is.
    pub kind: ReceiverKind,
    /// Where to post.
    pub url: reqwest::Url,
    /// HMAC-SHA256 key to sign bodies with.
    pub secret: Option<String>,
    /// Bearer token to send.
    pub token: Option<String>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("url", &redact_url(&self.url))
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// One body to post, and the incidents whose timelines record the outcome (none for routine
/// re-sends).
#[derive(Clone, Debug)]
pub struct Delivery {
    /// JSON.
    pub body: Vec<u8>,
    /// Incidents to record the outcome for.
    pub record_for: Vec<String>,
}

/// How a delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The receiver's name.
    pub receiver: String,
    /// The last HTTP status, if an answer came.
    pub status: Option<u16>,
    /// The last error, if it failed.
    pub error: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The incidents to record it for.
    pub record_for: Vec<String>,
}

/// Counters of one receiver.
#[derive(Debug, Default)]
pub struct ReceiverCounters {
    /// Deliveries a receiver accepted (2xx).
    pub sent: AtomicU64,
    /// Deliveries given up after every attempt, or refused for good (4xx).
    pub failed: AtomicU64,
    /// Attempts repeated after a failure.
    pub retries: AtomicU64,
    /// Deliveries dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// The sending end of one receiver's queue.
#[derive(Clone, Debug)]
pub struct Outbox {
    /// The receiver's name.
    pub name: String,
    /// Its kind.
    pub kind: ReceiverKind,
    /// Its counters.
    pub counters: Arc<ReceiverCounters>,
    queue: mpsc::Sender<Delivery>,
}

impl Outbox {
    /// Queues `delivery` without waiting; a full queue drops it and counts it.
    pub fn send(&self, delivery: Delivery) {
        if self.queue.try_send(delivery).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "receiver={} The notification queue is full; a notification was dropped.",
                self.name
            );
        }
    }
}

/// An outbox whose deliveries land in the returned queue, for tests of what is sent.
#[cfg(test)]
pub(super) fn test_outbox(name: &str, kind: ReceiverKind) -> (Outbox, mpsc::Receiver<Delivery>) {
    let (queue, inbox) = mpsc::channel(QUEUE_CAPACITY);
    let outbox = Outbox {
        name: name.to_owned(),
        kind,
        counters: Arc::default(),
        queue,
    };
    (outbox, inbox)
}

/// Starts the task that delivers to `receiver`; outcomes of recorded deliveries go to
/// `outcomes` (dropped when it is full).
pub fn spawn(
    receiver: Receiver,
    client: reqwest::Client,
    outcomes: mpsc::Sender<Outcome>,
) -> (Outbox, JoinHandle<()>) {
    let (queue, mut inbox) = mpsc::channel::<Delivery>(QUEUE_CAPACITY);
    let counters = Arc::new(ReceiverCounters::default());
    let outbox = Outbox {
        name: receiver.name.clone(),
        kind: receiver.kind,
        counters: counters.clone(),
        queue,
    };
    let task = tokio::spawn(async move {
        while let Some(delivery) = inbox.recv().await {
            let outcome = deliver(&client, &receiver, &counters, delivery).await;
            if !outcome.record_for.is_empty() {
                let _ = outcomes.try_send(outcome);
            }
        }
    });
    (outbox, task)
}

async fn deliver(
    client: &reqwest::Client,
    receiver: &Receiver,
    counters: &ReceiverCounters,
    delivery: Delivery,
) -> Outcome {
    let mut outcome = Outcome {
        receiver: receiver.name.clone(),
        status: None,
        error: None,
        attempts: 0,
        record_for: delivery.record_for,
    };
    let mut backoff = FIRST_BACKOFF;
    loop {
        outcome.attempts += 1;
        let mut request = client
            .post(receiver.url.clone())
            .timeout(ATTEMPT_TIMEOUT)
            .header(CONTENT_TYPE, "application/json")
            .body(delivery.body.clone());
        if let Some(secret) = &receiver.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, &delivery.body));
        }
        if let Some(token) = &receiver.token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let retry = match request.send().await {
            Ok(response) => {
                let status = response.status();
                outcome.status = Some(status.as_u16());
                if status.is_success() {
                    outcome.error = None;
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    return outcome;
                }
                outcome.error = Some(format!("HTTP {status}"));
                // A refusal stays a refusal; an overloaded or failing receiver may recover.
                status.is_server_error() || status.as_u16() == 429
            }
            Err(error) => {
                outcome.status = None;
                // reqwest's message names the URL, which may carry credentials: keep the kind.
                outcome.error = Some(describe(&error));
                true
            }
        };
        if !retry || outcome.attempts >= MAX_ATTEMPTS {
            counters.failed.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "receiver={} attempts={} error={} A notification could not be delivered.",
                receiver.name,
                outcome.attempts,
                outcome.error.as_deref().unwrap_or("unknown")
            );
            return outcome;
        }
        counters.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(8));
    }
}

/// A transport error, without the URL.
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_request() {
        "request failed"
    } else {
        "transport error"
    };
    kind.to_owned()
}

/// `sha256=HEX` of HMAC-SHA256 over `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length; the error case cannot happen.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
