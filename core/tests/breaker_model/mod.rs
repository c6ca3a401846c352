//! The circuit breaker as it was before its code was reshaped for size:
//! the model the differential property compares the breaker with, answer
//! for answer. Kept as it was but for its documentation, the
//! configuration read through its public accessors, and no validation
//! (the breaker it is compared with validates); not to be changed.
#![allow(dead_code, unreachable_pub, clippy::all)]

use ratekeeper_core::{BreakerConfig, BreakerSnapshot, BreakerState, CallResult, Instant, Nanos, Rejected};

#[derive(Debug, PartialEq, Eq, Hash)]
#[must_use = "record the call's result against its permit"]
pub struct Permit {
    generation: u32,
    probe: bool,
}

impl Permit {
    pub const fn is_probe(&self) -> bool {
        self.probe
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Ring<const WORDS: usize> {
    bits: [u64; WORDS],
    window: u32,
    len: u32,
    next: u32,
    failures: u32,
}

impl<const WORDS: usize> Ring<WORDS> {
    const fn new(window: u32) -> Ring<WORDS> {
        Ring {
            bits: [0; WORDS],
            window,
            len: 0,
            next: 0,
            failures: 0,
        }
    }

    fn clear(&mut self) {
        *self = Ring::new(self.window);
    }

    fn push(&mut self, failed: bool) {
        if self.window == 0 {
            return;
        }
        let word_index = usize::try_from(self.next >> 6).unwrap_or(usize::MAX);
        let mask = 1u64 << (self.next & 63);
        let Some(word) = self.bits.get_mut(word_index) else {
            return;
        };
        if self.len >= self.window {
            // Full: the slot being written holds the oldest result.
            if *word & mask != 0 {
                self.failures = self.failures.saturating_sub(1);
            }
        } else {
            self.len = self.len.saturating_add(1);
        }
        if failed {
            *word |= mask;
            self.failures = self.failures.saturating_add(1);
        } else {
            *word &= !mask;
        }
        let next = self.next.saturating_add(1);
        self.next = if next >= self.window { 0 } else { next };
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { since: Instant, probes: u32 },
    ForcedOpen,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Breaker<const WORDS: usize = 1> {
    config: BreakerConfig,
    phase: Phase,
    generation: u32,
    consecutive: u32,
    trips: u32,
    ring: Ring<WORDS>,
}

impl<const WORDS: usize> Breaker<WORDS> {
    pub const CAPACITY: u32 = {
        let calls = WORDS.saturating_mul(64);
        if calls > u32::MAX as usize {
            u32::MAX
        } else {
            calls as u32
        }
    };

    pub const fn new(config: BreakerConfig) -> Result<Breaker<WORDS>, ()> {
        let window = if config.failure_rate_bp() > 0 {
            config.window()
        } else {
            0
        };
        Ok(Breaker {
            config,
            phase: Phase::Closed,
            generation: 0,
            consecutive: 0,
            trips: 0,
            ring: Ring::new(window),
        })
    }

    pub const fn config(&self) -> &BreakerConfig {
        &self.config
    }

    pub fn permit(&mut self, now: Instant) -> Result<Permit, Rejected> {
        if let Phase::Open { until } = self.phase {
            if now < until {
                return Err(Rejected {
                    state: BreakerState::Open,
                    retry_after: until.saturating_duration_since(now),
                });
            }
            self.enter(Phase::HalfOpen {
                since: now,
                probes: 0,
            });
        }
        match self.phase {
            Phase::Closed => Ok(Permit {
                generation: self.generation,
                probe: false,
            }),
            Phase::HalfOpen { since, probes } => {
                if probes < self.config.probes() {
                    self.phase = Phase::HalfOpen {
                        since,
                        probes: probes.saturating_add(1),
                    };
                    return Ok(Permit {
                        generation: self.generation,
                        probe: true,
                    });
                }
                let probes_end = since.saturating_add(self.config.open_for());
                if now < probes_end {
                    return Err(Rejected {
                        state: BreakerState::HalfOpen,
                        retry_after: probes_end.saturating_duration_since(now),
                    });
                }
                // Every probe is out and none reported in time: take that
                // as a failure rather than wait for them forever.
                self.trip(now);
                self.permit(now)
            }
            Phase::ForcedOpen => Err(Rejected {
                state: BreakerState::ForcedOpen,
                retry_after: Nanos::ZERO,
            }),
            // Unreachable: an open breaker was handled above. Refusing is
            // the safe answer anyway.
            Phase::Open { until } => Err(Rejected {
                state: BreakerState::Open,
                retry_after: until.saturating_duration_since(now),
            }),
        }
    }

    pub fn record(&mut self, permit: Permit, result: CallResult, now: Instant) -> Option<BreakerState> {
        if permit.generation != self.generation {
            return None;
        }
        match (self.phase, result) {
            (Phase::Closed, CallResult::Success) => {
                self.consecutive = 0;
                self.ring.push(false);
                None
            }
            (Phase::Closed, CallResult::Failure) => {
                self.consecutive = self.consecutive.saturating_add(1);
                self.ring.push(true);
                if self.should_trip() {
                    self.trip(now);
                    Some(BreakerState::Open)
                } else {
                    None
                }
            }
            (Phase::HalfOpen { .. }, CallResult::Success) if permit.probe => {
                self.trips = 0;
                self.enter(Phase::Closed);
                Some(BreakerState::Closed)
            }
            (Phase::HalfOpen { .. }, CallResult::Failure) if permit.probe => {
                self.trip(now);
                Some(BreakerState::Open)
            }
            _ => None,
        }
    }

    pub fn release(&mut self, permit: Permit) {
        if permit.generation != self.generation || !permit.probe {
            return;
        }
        if let Phase::HalfOpen { since, probes } = self.phase {
            self.phase = Phase::HalfOpen {
                since,
                probes: probes.saturating_sub(1),
            };
        }
    }

    pub fn reset(&mut self) {
        self.trips = 0;
        self.enter(Phase::Closed);
    }

    pub fn force_open(&mut self) {
        self.enter(Phase::ForcedOpen);
    }

    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let (state, open_for, probes_in_flight) = match self.phase {
            Phase::Closed => (BreakerState::Closed, None, 0),
            Phase::Open { until } if now < until => {
                (BreakerState::Open, Some(until.saturating_duration_since(now)), 0)
            }
            Phase::Open { .. } => (BreakerState::HalfOpen, None, 0),
            Phase::HalfOpen { probes, .. } => (BreakerState::HalfOpen, None, probes),
            Phase::ForcedOpen => (BreakerState::ForcedOpen, None, 0),
        };
        BreakerSnapshot {
            state,
            consecutive_failures: self.consecutive,
            window_calls: self.ring.len,
            window_failures: self.ring.failures,
            trips: self.trips,
            open_for,
            probes_in_flight,
        }
    }

    fn should_trip(&self) -> bool {
        let streak = self.config.consecutive_failure_threshold();
        if streak > 0 && self.consecutive >= streak {
            return true;
        }
        let rate = u64::from(self.config.failure_rate_bp());
        let calls = u64::from(self.ring.len);
        rate > 0
            && self.ring.len >= self.config.min_calls()
            && u64::from(self.ring.failures).saturating_mul(10_000) >= rate.saturating_mul(calls)
    }

    fn trip(&mut self, now: Instant) {
        self.trips = self.trips.saturating_add(1);
        let until = now.saturating_add(self.config.open_time(self.trips));
        self.enter(Phase::Open { until });
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.generation = self.generation.wrapping_add(1);
        self.consecutive = 0;
        self.ring.clear();
    }
}
