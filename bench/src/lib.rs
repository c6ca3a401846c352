//! Measurements of ratekeeper next to its anchors, in one process on one
//! machine, so that ratios are fair. Each section returns named figures;
//! the `compare` binary prints them all as one JSON object.
#![forbid(unsafe_code)]

pub mod memory;
pub mod redis;

/// One named figure of a comparison run.
pub type Figure = (&'static str, serde_json::Value);

/// The median of `samples` (which it sorts); `None` when empty.
pub fn median(samples: &mut [f64]) -> Option<f64> {
    samples.sort_by(f64::total_cmp);
    let mid = samples.len() / 2;
    match samples.len() {
        0 => None,
        n if n % 2 == 1 => samples.get(mid).copied(),
        _ => Some((samples.get(mid - 1)? + samples.get(mid)?) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(super::median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(super::median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(super::median(&mut []), None);
    }
}
