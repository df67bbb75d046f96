use crate::{ChaosError, Decision, Rule};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The longest delay or hang a rule may ask for, in milliseconds.
pub const MAX_DURATION_MS: f64 = 60_000.0;

/// A hang long enough to outlast any reasonable client timeout, for callers that only switch
/// a timeout on without choosing its length.
pub const DEFAULT_HANG_MS: f64 = 30_000.0;

/// Chaos rules for a fixed set of monitored endpoints, and the per-request decisions they imply.
///
/// `Chaos` is `Send + Sync`; share it behind an `Arc`. Every setter validates its input first
/// and changes nothing when it returns an error.
pub struct Chaos {
    monitored: Vec<String>,
    /// Mirrors "the rule table is not empty" so that [`Chaos::decide`] skips the lock when
    /// nothing is injected; written only while the state lock is held.
    any_rules: AtomicBool,
    /// Written only while the state lock is held, so a setter never races a switch-off.
    enabled: AtomicBool,
    state: Mutex<State>,
}

struct State {
    rules: BTreeMap<String, Rule>,
    rng: StdRng,
}

impl Chaos {
    /// Chaos for the given monitored routes, enabled, with no rules.
    ///
    /// With a `seed`, the sequence of [`decide`](Self::decide) outcomes is reproducible for the
    /// same sequence of rules and calls; without one, the generator is seeded from the
    /// operating system.
    pub fn new(monitored: Vec<String>, seed: Option<u64>) -> Self {
        let mut monitored = monitored;
        monitored.sort();
        monitored.dedup();
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Chaos {
            monitored,
            any_rules: AtomicBool::new(false),
            enabled: AtomicBool::new(true),
            state: Mutex::new(State {
                rules: BTreeMap::new(),
                rng,
            }),
        }
    }

    /// The routes a rule may target, sorted.
    pub fn monitored(&self) -> &[String] {
        &self.monitored
    }

    /// Whether rules can be set.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Switches injection on or off. Switching it off removes every rule, and every setter
    /// then answers [`ChaosError::Disabled`] until it is switched back on.
    pub fn set_enabled(&self, enabled: bool) {
        let mut state = self.lock();
        self.enabled.store(enabled, Ordering::Release);
        if !enabled {
            state.rules.clear();
            self.any_rules.store(false, Ordering::Release);
        }
    }

    /// Adds `duration_ms` of latency to every request to `endpoint`; `0` removes the delay.
    ///
    /// Accepted: a monitored endpoint and a duration from 0 to [`MAX_DURATION_MS`].
    pub fn set_delay(&self, endpoint: &str, duration_ms: f64) -> Result<(), ChaosError> {
        self.update(
            endpoint,
            || validate_duration("delay", duration_ms),
            |rule, value| rule.delay_ms = value,
        )
    }

    /// Fails a share `rate` of the requests to `endpoint`; `0` removes the error rate.
    ///
    /// Accepted: a monitored endpoint and a finite rate from 0 to 1.
    pub fn set_error_rate(&self, endpoint: &str, rate: f64) -> Result<(), ChaosError> {
        self.update(
            endpoint,
            || {
                if !(0.0..=1.0).contains(&rate) {
                    return Err(ChaosError::InvalidRate { value: rate });
                }
                Ok((rate > 0.0).then_some(rate))
            },
            |rule, value| rule.error_rate = value,
        )
    }

    /// Makes every request to `endpoint` hang for `hang_ms`, long enough to exceed its
    /// caller's timeout; `0` removes the timeout. [`DEFAULT_HANG_MS`] suits callers that only
    /// switch a timeout on.
    ///
    /// Accepted: a monitored endpoint and a duration from 0 to [`MAX_DURATION_MS`].
    pub fn set_timeout(&self, endpoint: &str, hang_ms: f64) -> Result<(), ChaosError> {
        self.update(
            endpoint,
            || validate_duration("timeout", hang_ms),
            |rule, value| rule.hang_ms = value,
        )
    }

    /// Removes every rule and returns how many there were.
    pub fn clear(&self) -> usize {
        let mut state = self.lock();
        let removed = state.rules.len();
        state.rules.clear();
        self.any_rules.store(false, Ordering::Release);
        removed
    }

    /// The rules in force, sorted by endpoint.
    pub fn status(&self) -> Vec<Rule> {
        self.lock().rules.values().cloned().collect()
    }

    /// What to do to one request to `endpoint`.
    ///
    /// Costs one atomic load when no rule is set anywhere. A random draw is made only for an
    /// endpoint with an error rate, so a seeded sequence depends on nothing else.
    pub fn decide(&self, endpoint: &str) -> Decision {
        if !self.any_rules.load(Ordering::Acquire) {
            return Decision::default();
        }
        let mut state = self.lock();
        let State { rules, rng } = &mut *state;
        let Some(rule) = rules.get(endpoint) else {
            return Decision::default();
        };
        Decision {
            delay: rule.delay_ms.map(millis),
            fail: rule
                .error_rate
                .is_some_and(|rate| rng.random::<f64>() < rate),
            hang: rule.hang_ms.map(millis),
        }
    }

    /// Checks the switch, the endpoint and the value, in that order, then sets one part of
    /// the endpoint's rule, dropping the rule when no part remains.
    fn update(
        &self,
        endpoint: &str,
        validate: impl FnOnce() -> Result<Option<f64>, ChaosError>,
        set: impl FnOnce(&mut Rule, Option<f64>),
    ) -> Result<(), ChaosError> {
        if !self.is_enabled() {
            return Err(ChaosError::Disabled);
        }
        if !self.monitored.iter().any(|route| route == endpoint) {
            return Err(ChaosError::UnknownEndpoint {
                endpoint: endpoint.to_owned(),
                accepted: self.monitored.clone(),
            });
        }
        let value = validate()?;
        let mut state = self.lock();
        // Checked again under the lock: a concurrent switch-off must not be undone.
        if !self.enabled.load(Ordering::Acquire) {
            return Err(ChaosError::Disabled);
        }
        let mut rule = state
            .rules
            .remove(endpoint)
            .unwrap_or_else(|| Rule::empty(endpoint));
        set(&mut rule, value);
        if !rule.is_empty() {
            state.rules.insert(endpoint.to_owned(), rule);
        }
        self.any_rules
            .store(!state.rules.is_empty(), Ordering::Release);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No holder can leave the state half-written (nothing fallible runs under the lock),
        // so a poisoned lock is still safe to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Chaos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("monitored", &self.monitored)
            .field("enabled", &self.is_enabled())
            .field("rules", &self.status())
            .finish_non_exhaustive()
    }
}

fn validate_duration(setting: &'static str, value_ms: f64) -> Result<Option<f64>, ChaosError> {
    if !(0.0..=MAX_DURATION_MS).contains(&value_ms) {
        return Err(ChaosError::InvalidDuration { setting, value_ms });
    }
    Ok((value_ms > 0.0).then_some(value_ms))
}

fn millis(value_ms: f64) -> Duration {
    Duration::from_secs_f64(value_ms / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn shop(seed: Option<u64>) -> Chaos {
        let routes = ["/payment", "/health", "/inventory", "/checkout"];
        Chaos::new(routes.iter().map(|r| r.to_string()).collect(), seed)
    }

    fn accepted() -> Vec<String> {
        ["/checkout", "/health", "/inventory", "/payment"]
            .iter()
            .map(|r| r.to_string())
            .collect()
    }

    #[test]
    fn chaos_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Chaos>();
    }

    #[test]
    fn new_chaos_is_enabled_with_no_rules_and_sorted_routes() {
        let chaos = shop(None);
        assert!(chaos.is_enabled());
        assert!(chaos.status().is_empty());
        assert_eq!(chaos.monitored(), accepted().as_slice());
        assert!(chaos.decide("/payment").is_noop());
    }

    #[test]
    fn delay_applies_to_its_endpoint_only() {
        let chaos = shop(Some(1));
        chaos.set_delay("/payment", 2000.0).unwrap();
        assert_eq!(
            chaos.decide("/payment"),
            Decision {
                delay: Some(Duration::from_secs(2)),
                fail: false,
                hang: None,
            }
        );
        assert!(chaos.decide("/inventory").is_noop());
    }

    #[test]
    fn unknown_endpoint_is_rejected_for_every_setting_and_lists_accepted() {
        let chaos = shop(None);
        let expected = ChaosError::UnknownEndpoint {
            endpoint: "/nope".into(),
            accepted: accepted(),
        };
        assert_eq!(chaos.set_delay("/nope", 10.0), Err(expected.clone()));
        assert_eq!(chaos.set_error_rate("/nope", 0.5), Err(expected.clone()));
        assert_eq!(chaos.set_timeout("/nope", 10.0), Err(expected));
        assert!(chaos.status().is_empty());
    }

    #[test]
    fn endpoint_match_is_exact() {
        let chaos = shop(None);
        for endpoint in ["payment", "/payment/", "/Payment", "", "/aiops/metrics"] {
            assert!(matches!(
                chaos.set_delay(endpoint, 10.0),
                Err(ChaosError::UnknownEndpoint { .. })
            ));
        }
    }

    #[test]
    fn duration_bounds_are_inclusive() {
        let chaos = shop(None);
        assert_eq!(chaos.set_delay("/payment", MAX_DURATION_MS), Ok(()));
        assert_eq!(chaos.set_timeout("/payment", MAX_DURATION_MS), Ok(()));
        assert_eq!(chaos.set_delay("/payment", 0.0), Ok(()));
        assert_eq!(chaos.status()[0].delay_ms, None);
    }

    #[test]
    fn negative_too_long_or_non_numeric_durations_are_rejected() {
        let chaos = shop(None);
        for value in [
            -1.0,
            -0.001,
            60_000.001,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert!(matches!(
                chaos.set_delay("/payment", value),
                Err(ChaosError::InvalidDuration {
                    setting: "delay",
                    ..
                })
            ));
            assert!(matches!(
                chaos.set_timeout("/payment", value),
                Err(ChaosError::InvalidDuration {
                    setting: "timeout",
                    ..
                })
            ));
        }
        assert!(chaos.status().is_empty());
    }

    #[test]
    fn rate_bounds_are_inclusive() {
        let chaos = shop(Some(3));
        assert_eq!(chaos.set_error_rate("/inventory", 1.0), Ok(()));
        assert!((0..100).all(|_| chaos.decide("/inventory").fail));
        assert_eq!(chaos.set_error_rate("/inventory", 0.0), Ok(()));
        assert!(chaos.status().is_empty());
        assert!(chaos.decide("/inventory").is_noop());
    }

    #[test]
    fn out_of_range_or_non_finite_rates_are_rejected() {
        let chaos = shop(None);
        for value in [
            -0.1,
            1.000_001,
            80.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert!(matches!(
                chaos.set_error_rate("/inventory", value),
                Err(ChaosError::InvalidRate { .. })
            ));
        }
        assert!(chaos.status().is_empty());
    }

    #[test]
    fn rejected_rule_leaves_existing_rules_untouched() {
        let chaos = shop(None);
        chaos.set_delay("/payment", 500.0).unwrap();
        chaos.set_error_rate("/payment", 0.5).unwrap();
        let before = chaos.status();

        assert!(chaos.set_delay("/payment", -1.0).is_err());
        assert!(chaos.set_error_rate("/payment", 2.0).is_err());
        assert!(chaos.set_timeout("/payment", f64::NAN).is_err());
        assert!(chaos.set_delay("/nope", 1.0).is_err());

        assert_eq!(chaos.status(), before);
    }

    #[test]
    fn settings_combine_into_one_rule_per_endpoint() {
        let chaos = shop(None);
        chaos.set_delay("/payment", 100.0).unwrap();
        chaos.set_error_rate("/payment", 0.25).unwrap();
        chaos.set_timeout("/payment", 5000.0).unwrap();
        chaos.set_delay("/payment", 200.0).unwrap();
        assert_eq!(
            chaos.status(),
            vec![Rule {
                endpoint: "/payment".into(),
                delay_ms: Some(200.0),
                error_rate: Some(0.25),
                hang_ms: Some(5000.0),
            }]
        );
    }

    #[test]
    fn zero_removes_only_that_part_of_a_rule() {
        let chaos = shop(None);
        chaos.set_delay("/payment", 100.0).unwrap();
        chaos.set_timeout("/payment", 3000.0).unwrap();
        chaos.set_delay("/payment", 0.0).unwrap();
        let status = chaos.status();
        assert_eq!(status.len(), 1);
        assert_eq!(status[0].delay_ms, None);
        assert_eq!(status[0].hang_ms, Some(3000.0));
        chaos.set_timeout("/payment", 0.0).unwrap();
        assert!(chaos.status().is_empty());
    }

    #[test]
    fn status_is_sorted_by_endpoint() {
        let chaos = shop(None);
        chaos.set_error_rate("/payment", 1.0).unwrap();
        chaos.set_delay("/inventory", 10.0).unwrap();
        chaos.set_timeout("/checkout", 10.0).unwrap();
        let endpoints: Vec<_> = chaos.status().into_iter().map(|r| r.endpoint).collect();
        assert_eq!(endpoints, ["/checkout", "/inventory", "/payment"]);
    }

    #[test]
    fn timeout_decision_carries_the_hang() {
        let chaos = shop(None);
        chaos.set_timeout("/inventory", DEFAULT_HANG_MS).unwrap();
        assert_eq!(
            chaos.decide("/inventory").hang,
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn clear_removes_every_rule_and_counts_them() {
        let chaos = shop(None);
        chaos.set_delay("/payment", 10.0).unwrap();
        chaos.set_error_rate("/inventory", 0.8).unwrap();
        assert_eq!(chaos.clear(), 2);
        assert!(chaos.status().is_empty());
        assert!(chaos.decide("/payment").is_noop());
        assert_eq!(chaos.clear(), 0);
    }

    #[test]
    fn disabled_chaos_rejects_every_setting_before_validating_it() {
        let chaos = shop(None);
        chaos.set_enabled(false);
        assert_eq!(chaos.set_delay("/payment", 10.0), Err(ChaosError::Disabled));
        assert_eq!(
            chaos.set_error_rate("/payment", 0.5),
            Err(ChaosError::Disabled)
        );
        assert_eq!(
            chaos.set_timeout("/payment", 10.0),
            Err(ChaosError::Disabled)
        );
        assert_eq!(chaos.set_delay("/nope", -1.0), Err(ChaosError::Disabled));
        assert!(chaos.status().is_empty());
    }

    #[test]
    fn switching_chaos_off_removes_rules_and_on_again_accepts_new_ones() {
        let chaos = shop(None);
        chaos.set_error_rate("/payment", 1.0).unwrap();
        chaos.set_enabled(false);
        assert!(!chaos.is_enabled());
        assert!(chaos.status().is_empty());
        assert!(!chaos.decide("/payment").fail);

        chaos.set_enabled(true);
        assert_eq!(chaos.set_error_rate("/payment", 1.0), Ok(()));
        assert!(chaos.decide("/payment").fail);
    }

    #[test]
    fn same_seed_gives_same_decisions() {
        let outcomes = |seed| {
            let chaos = shop(Some(seed));
            chaos.set_error_rate("/inventory", 0.5).unwrap();
            chaos.set_delay("/payment", 10.0).unwrap();
            (0..200)
                .map(|i| {
                    let endpoint = if i % 3 == 0 { "/payment" } else { "/inventory" };
                    chaos.decide(endpoint)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(outcomes(42), outcomes(42));
        assert_ne!(outcomes(42), outcomes(43));
    }

    #[test]
    fn seeded_error_rate_fails_about_that_share() {
        let chaos = shop(Some(7));
        chaos.set_error_rate("/inventory", 0.8).unwrap();
        let failures = (0..1000)
            .filter(|_| chaos.decide("/inventory").fail)
            .count();
        assert!((700..=900).contains(&failures), "{failures} failures");
    }

    #[test]
    fn shared_chaos_takes_rules_from_any_thread() {
        let chaos = Arc::new(shop(None));
        let handles: Vec<_> = ["/payment", "/inventory", "/checkout", "/health"]
            .into_iter()
            .map(|endpoint| {
                let chaos = Arc::clone(&chaos);
                std::thread::spawn(move || {
                    chaos.set_delay(endpoint, 1.0).unwrap();
                    chaos.decide(endpoint)
                })
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap().delay, Some(Duration::from_millis(1)));
        }
        assert_eq!(chaos.status().len(), 4);
    }
}
