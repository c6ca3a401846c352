//! Named checks, printed over semihosting as they are made, and the
//! verdict the firmware exits with.

use cortex_m_semihosting::{debug, hprintln};

use crate::scenario::checks::{self, Check};

/// Counts the checks of the scenario, and knows which comes next.
pub struct Report {
    passed: u32,
    failed: u32,
    next: usize,
}

impl Report {
    pub const fn new() -> Report {
        Report {
            passed: 0,
            failed: 0,
            next: 0,
        }
    }

    /// The next check is `checks::ALL[first]`: a stage's first check.
    #[cfg_attr(not(feature = "ratekeeper"), allow(dead_code))]
    pub fn stage(&mut self, first: usize) {
        self.next = first;
    }

    /// Makes the next check on `observed`, the values it names: it holds
    /// when there are as many as it has bounds, each within its own.
    #[inline(never)]
    pub fn verify(&mut self, observed: &[u64]) {
        let check = checks::ALL.get(self.next);
        self.next += 1;
        let held = check.is_some_and(|Check { bounds, .. }| {
            bounds.len() == observed.len()
                && bounds
                    .iter()
                    .zip(observed)
                    .all(|(bound, &value)| bound.low <= value && value <= bound.high)
        });
        self.check(check.map_or("(no such check)", |check| check.name), held);
    }

    /// Records the check `name`, which held when `held`.
    fn check(&mut self, name: &str, held: bool) {
        if held {
            self.passed += 1;
            hprintln!("ok    {}", name);
        } else {
            self.failed += 1;
            hprintln!("FAIL  {}", name);
        }
    }

    /// Prints a line of context for the checks that follow.
    pub fn note(&self, args: core::fmt::Arguments<'_>) {
        hprintln!("      {}", args);
    }

    /// Prints the totals and ends the run: exit status 0 only when at
    /// least one check was made and every check held.
    pub fn exit(&self) -> ! {
        hprintln!("{} checks passed, {} failed", self.passed, self.failed);
        if self.failed == 0 && self.passed > 0 {
            debug::exit(debug::EXIT_SUCCESS);
        } else {
            debug::exit(debug::EXIT_FAILURE);
        }
        loop {
            cortex_m::asm::wfi();
        }
    }
}
