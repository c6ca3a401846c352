//! The header parser as it was before its firmware build was made smaller,
//! kept as the model the parser is compared with (`headers_differential`):
//! the same readers, the result in a plain struct of its own.

#![allow(dead_code, clippy::all)]

mod dates;
mod families;
mod numbers;
mod structured;

pub(crate) use ratekeeper_core::headers::{
    Families, Format, MAX_COUNT, MAX_WAIT, Profile, QUOTA_CAPACITY, Quota, QuotaUnit, ResetUnit, UnixTime,
    WARNING_CAPACITY, Warning, WarningKind,
};

/// A quota with nothing stated yet.
const fn quota_new(format: Format, unit: QuotaUnit) -> Quota {
    Quota {
        format,
        unit,
        limit: None,
        remaining: None,
        reset_after: None,
        window: None,
    }
}

/// Warnings, up to [`WARNING_CAPACITY`], and a count of the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Warnings {
    kept: [Warning; WARNING_CAPACITY],
    len: u8,
    dropped: u16,
}

impl Warnings {
    fn push(&mut self, header: u16, kind: WarningKind) {
        match self.kept.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = Warning { header, kind };
                self.len = self.len.saturating_add(1);
            }
            None => self.dropped = self.dropped.saturating_add(1),
        }
    }
}

/// How to read one response (the parser's `ParseOptions`, fields open).
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParseOptions {
    pub(crate) now: Option<UnixTime>,
    pub(crate) now_overrides_date: bool,
    pub(crate) profile: Profile,
}

/// What the model reads from one response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateLimitInfo {
    pub(crate) status: Option<u16>,
    pub(crate) quotas: [Quota; QUOTA_CAPACITY],
    pub(crate) quota_count: u8,
    pub(crate) governing: Option<u8>,
    pub(crate) retry_after: Option<ratekeeper_core::Nanos>,
    pub(crate) date: Option<UnixTime>,
    pub(crate) warnings: Warnings,
}

impl RateLimitInfo {
    pub(crate) fn quotas(&self) -> &[Quota] {
        &self.quotas[..usize::from(self.quota_count)]
    }

    pub(crate) fn warnings(&self) -> &[Warning] {
        &self.warnings.kept[..usize::from(self.warnings.len)]
    }

    pub(crate) fn warnings_dropped(&self) -> u16 {
        self.warnings.dropped
    }
}

/// Reads one response with the families and forms `F` selects.
pub(crate) fn parse<'a, const F: u32>(
    status: Option<u16>,
    headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    options: &ParseOptions,
) -> RateLimitInfo {
    let mut info = RateLimitInfo {
        status,
        quotas: [quota_new(Format::Close, QuotaUnit::Requests); QUOTA_CAPACITY],
        quota_count: 0,
        governing: None,
        retry_after: None,
        date: None,
        warnings: Warnings {
            kept: [Warning {
                header: 0,
                kind: WarningKind::Malformed,
            }; WARNING_CAPACITY],
            len: 0,
            dropped: 0,
        },
    };
    families::parse::<F, _>(&mut info, headers, options);
    info
}
