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
        return beyond_normal_tail(hits, expected, expected.sqrt(), MAX_CHANCE);
    }
    let mut term = (-expected).exp();
    let mut below = 0.0;
    for k in 0..hits {
        below += term;
        term *= expected / (k + 1) as f64;
    }
    1.0 - below < MAX_CHANCE
}

/// True when `hits` or more of `count` independent requests, each crossing with probability
/// `rate`, would happen by chance less than [`MAX_CHANCE`] of the time, by the exact tail of
/// the binomial distribution. Unlike [`improbable`], it holds at any rate: at a rate near one
/// the Poisson tail is far wider than the binomial one (at a rate of 0.73, 91 of 98 is a
/// chance of one in a million, which the Poisson tail puts at one in fifty). Past 5,000
/// requests the normal tail is exact enough.
pub fn improbably_many(hits: u64, count: u64, rate: f64) -> bool {
    rarer_than(hits, count, rate, MAX_CHANCE)
}

/// True when `hits` or more of `count` independent requests, each crossing with probability
/// `rate`, would happen by chance less than `chance` of the time, by the exact tail of the
/// binomial distribution ([`improbably_many`] at another bar). Past 5,000 requests the
/// normal tail is exact enough.
pub fn rarer_than(hits: u64, count: u64, rate: f64, chance: f64) -> bool {
    let p = rate.clamp(0.0, 1.0);
    if hits == 0 || hits > count || p >= 1.0 {
        return false;
    }
    if p <= 0.0 {
        return true;
    }
    let n = count as f64;
    if count > 5_000 {
        let expected = n * p;
        return beyond_normal_tail(hits, expected, (expected * (1.0 - p)).sqrt(), chance);
    }
    // The probability of exactly `hits`, in logarithms (the binomial coefficient by its
    // shorter product), then each term above it from the one before.
    let shorter = hits.min(count - hits);
    let ln_ways: f64 = (0..shorter)
        .map(|i| ((count - i) as f64).ln() - ((i + 1) as f64).ln())
        .sum();
    let mut term = (ln_ways + hits as f64 * p.ln() + (n - hits as f64) * (1.0 - p).ln()).exp();
    let odds = p / (1.0 - p);
    let mut tail = 0.0;
    for k in hits..=count {
        tail += term;
        if tail >= chance {
            return false;
        }
        term *= (count - k) as f64 / (k + 1) as f64 * odds;
        if term == 0.0 {
            break;
        }
    }
    true
}

/// The chance that a standard normal variable exceeds `z` (Abramowitz and Stegun 7.1.26;
/// within 1.5e-7 of it, and within a fraction of a percent of it out to nine deviations).
pub fn normal_tail(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let upper = 0.5 * poly * (-x * x).exp();
    if z >= 0.0 { upper } else { 1.0 - upper }
}

/// True when `hits` (with the continuity correction) lie past the normal distribution's tail
/// of `chance` above `expected`, whose spread is `deviation` (3.72 deviations for
/// [`MAX_CHANCE`]).
fn beyond_normal_tail(hits: u64, expected: f64, deviation: f64, chance: f64) -> bool {
    normal_tail((hits as f64 - 0.5 - expected) / deviation) < chance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binomial_tail_is_exact_where_the_poisson_one_is_too_wide() {
        // Exact tails: 32 or more heads of 40 fair tosses, 9.1e-5; 31 or more, 3.4e-4.
        assert!(improbably_many(32, 40, 0.5));
        assert!(!improbably_many(31, 40, 0.5));
        // 91 of 98 at 0.73: 6.6e-7, which the Poisson tail misses.
        assert!(improbably_many(91, 98, 0.73));
        assert!(!improbable(91, 98, 0.73));
        // 15 of 40 at 0.11: 1.1e-5; 10 of 20 at 0.2: 2.6e-3.
        assert!(improbably_many(15, 40, 0.11));
        assert!(!improbably_many(10, 20, 0.2));
    }

    #[test]
    fn the_binomial_tail_takes_the_edges_and_large_counts() {
        assert!(!improbably_many(0, 40, 0.5), "no hit is no evidence");
        assert!(
            improbably_many(1, 40, 0.0),
            "a hit that cannot happen by chance"
        );
        assert!(!improbably_many(40, 40, 1.0), "every request crosses");
        assert!(
            !improbably_many(41, 40, 0.5),
            "more hits than requests say nothing"
        );
        // Normal tail past 5,000: 5,200 of 10,000 is 4 deviations, 5,150 is 3.
        assert!(improbably_many(5_200, 10_000, 0.5));
        assert!(!improbably_many(5_150, 10_000, 0.5));
        // An extreme count underflows to a tail of zero, which is improbable.
        assert!(improbably_many(4_000, 4_000, 0.5));
    }

    #[test]
    fn another_bar_takes_the_same_exact_tail() {
        // 10 or more of 20 at 0.2: 2.6e-3, under one in a hundred and over one in a thousand.
        assert!(rarer_than(10, 20, 0.2, 1e-2));
        assert!(!rarer_than(10, 20, 0.2, 1e-3));
        // 28 of 118 at 0.2 is about what chance gives (one in six or so).
        assert!(!rarer_than(28, 118, 0.2, 1e-2));
    }

    #[test]
    fn the_normal_tail_matches_its_tables() {
        for (z, tail) in [
            (0.0, 0.5),
            (1.0, 0.158_655_25),
            (1.644_853_6, 0.05),
            (3.719_016_5, 1e-4),
            (-1.0, 0.841_344_75),
        ] {
            let got = normal_tail(z);
            assert!(
                (got - tail).abs() <= tail * 2e-3,
                "tail past {z}: {got}, expected {tail}"
            );
        }
    }
}
