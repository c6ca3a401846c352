//! The in-memory store against `governor`.

use crate::Figure;

/// Figures of the in-memory store; none yet.
pub fn figures(_rounds: usize) -> Vec<Figure> {
    Vec::new()
}
