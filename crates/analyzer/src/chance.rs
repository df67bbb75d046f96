//! How improbable a count of rare events is by chance alone.
//!
//! Every endpoint (and every call an endpoint makes) is judged every few seconds, so a test
//! that fires on one window in a thousand fires somewhere every hour. Rare events (failures,
//! timeouts, requests that skip a usual call) come in few units, and the normal approximation
//! behind "three (or five) deviations" understates their tail; the exact tail does not.

/// The chance below which a count of rare events is no bad luck. Every endpoint is judged
/// every few seconds, so a test at three deviations (one in a thousand) fires somewhere every
/// hour on a heavy-tailed dependency; one in ten thousand of the exact tail does not.
pub const MAX_CHANCE: f64 = 1e-4;

/// True when `hits` or more of `count` independent requests, each crossing with probability
/// `rate`, would happen by chance less than [`MAX_CHANCE`] of the time. Rare events are
/// counted in few units: the normal approximation behind three deviations understates their
/// tail (at 1.5 expected, six or more happen in one window of 220, not of 740). The tail is
/// that of the Poisson distribution, close to the binomial one at the small rates it judges;
/// past 100 expected the normal one is exact enough.
pub fn improbable(hits: u64, count: u64, rate: f64) -> bool {
    let expected = rate.clamp(0.0, 1.0) * count as f64;
    if hits == 0 {
        return false;
    }
    if expected <= 0.0 {
        return true;
    }
    let hits_f = hits as f64;
    if expected > 100.0 || hits_f > expected + 12.0 * expected.sqrt() + 30.0 {
        // z = 3.72 is the normal distribution's one in ten thousand.
        return hits_f - 0.5 >= expected + 3.72 * expected.sqrt();
    }
    let mut term = (-expected).exp();
    let mut below = 0.0;
    for k in 0..hits {
        below += term;
        term *= expected / (k + 1) as f64;
    }
    1.0 - below < MAX_CHANCE
}
