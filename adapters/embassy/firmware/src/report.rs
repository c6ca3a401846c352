//! Named checks, printed over semihosting as they are made, and the
//! verdict the firmware exits with.

use cortex_m_semihosting::{debug, hprintln};

/// Counts the checks of the scenario.
pub struct Report {
    passed: u32,
    failed: u32,
}

impl Report {
    pub const fn new() -> Report {
        Report { passed: 0, failed: 0 }
    }

    /// Records the check `name`, which held when `held`.
    pub fn check(&mut self, name: &str, held: bool) {
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
