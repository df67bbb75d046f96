//! Request arrivals at the entry services: a Poisson process whose rate follows a load
//! profile (steady, a doubling, a diurnal ramp).

use rand::Rng;
use rand::rngs::StdRng;

use crate::sample::{exponential, weighted};
use crate::topology::{OpRef, Topology};

const SECOND: f64 = 1e9;

/// How the request rate changes over a case.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// The base rate throughout.
    Steady,
    /// The rate doubles, ramping linearly over `ramp_ns` from `at_ns`, and stays doubled.
    Doubling {
        /// Start of the ramp, Unix nanoseconds.
        at_ns: u64,
        /// Length of the ramp.
        ramp_ns: u64,
    },
    /// A diurnal ramp: the rate rises smoothly (half a cosine) from `low` times the base rate
    /// at `from_ns` to `high` times it at `to_ns`, flat before and after.
    Diurnal {
        /// Start of the ramp, Unix nanoseconds.
        from_ns: u64,
        /// End of the ramp, Unix nanoseconds.
        to_ns: u64,
        /// Multiple of the base rate at the start.
        low: f64,
        /// Multiple of the base rate at the end.
        high: f64,
    },
}

impl Load {
    /// The multiple of the base rate at `t`.
    pub fn multiple_at(&self, t: u64) -> f64 {
        match *self {
            Self::Steady => 1.0,
            Self::Doubling { at_ns, ramp_ns } => {
                let progress = t.saturating_sub(at_ns) as f64 / ramp_ns.max(1) as f64;
                1.0 + progress.min(1.0)
            }
            Self::Diurnal {
                from_ns,
                to_ns,
                low,
                high,
            } => {
                let progress =
                    (t.saturating_sub(from_ns) as f64 / (to_ns - from_ns) as f64).min(1.0);
                low + (high - low) * (1.0 - (std::f64::consts::PI * progress).cos()) / 2.0
            }
        }
    }

    /// The largest multiple the profile reaches.
    fn peak(&self) -> f64 {
        match *self {
            Self::Steady => 1.0,
            Self::Doubling { .. } => 2.0,
            Self::Diurnal { low, high, .. } => low.max(high),
        }
    }
}

/// Request arrivals: a non-homogeneous Poisson process (drawn by thinning).
#[derive(Clone, Debug)]
pub struct Traffic {
    base_rate: f64,
    load: Load,
    next_ns: u64,
}

impl Traffic {
    /// Arrivals at `base_rate` requests per second shaped by `load`, from `start_ns`.
    pub fn new(rng: &mut StdRng, base_rate: f64, load: Load, start_ns: u64) -> Self {
        let mut traffic = Self {
            base_rate,
            load,
            next_ns: start_ns,
        };
        traffic.next_ns = traffic.following(rng, start_ns);
        traffic
    }

    /// The next arrival, without consuming it.
    pub fn peek(&self) -> u64 {
        self.next_ns
    }

    /// Consumes the next arrival and returns it.
    pub fn advance(&mut self, rng: &mut StdRng) -> u64 {
        let current = self.next_ns;
        self.next_ns = self.following(rng, current);
        current
    }

    /// How much slower the system works at `t` because of the load: own times grow by 15%
    /// of the load's growth over the base rate.
    pub fn load_factor(&self, t: u64) -> f64 {
        1.0 + 0.15 * (self.load.multiple_at(t) - 1.0)
    }

    fn following(&self, rng: &mut StdRng, mut t: u64) -> u64 {
        let peak = self.base_rate * self.load.peak();
        loop {
            t += (exponential(rng, 1.0 / peak) * SECOND) as u64;
            let rate = self.base_rate * self.load.multiple_at(t);
            if rng.random::<f64>() * peak <= rate {
                return t;
            }
        }
    }
}

/// An entry operation, drawn by traffic share.
pub fn entry(rng: &mut StdRng, topology: &Topology) -> OpRef {
    let weights: Vec<f64> = topology.entries.iter().map(|(_, w)| *w).collect();
    topology.entries[weighted(rng, &weights)].0
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn count(traffic: &mut Traffic, rng: &mut StdRng, from: u64, to: u64) -> usize {
        let mut n = 0;
        while traffic.peek() < to {
            if traffic.advance(rng) >= from {
                n += 1;
            }
        }
        n
    }

    #[test]
    fn doubling_doubles_the_arrivals() {
        let mut rng = StdRng::seed_from_u64(4);
        let s = 1_000_000_000;
        let load = Load::Doubling {
            at_ns: 100 * s,
            ramp_ns: 10 * s,
        };
        let mut traffic = Traffic::new(&mut rng, 10.0, load, 0);
        let before = count(&mut traffic, &mut rng, 0, 100 * s);
        let after = count(&mut traffic, &mut rng, 110 * s, 210 * s);
        assert!((900..1_100).contains(&before), "{before}");
        assert!((1_800..2_200).contains(&after), "{after}");
    }

    #[test]
    fn diurnal_ramp_goes_from_low_to_high() {
        let load = Load::Diurnal {
            from_ns: 0,
            to_ns: 100,
            low: 0.5,
            high: 1.5,
        };
        assert_eq!(load.multiple_at(0), 0.5);
        assert!((load.multiple_at(50) - 1.0).abs() < 1e-9);
        assert_eq!(load.multiple_at(200), 1.5);
    }
}
