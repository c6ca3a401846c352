//! Host-specific unit rules: what a bare number in a reset field means for
//! the providers whose choice the magnitude rule gets wrong or only guesses.

/// What a bare number in a reset field (`X-RateLimit-Reset`,
/// `X-Rate-Limit-Reset`, `RateLimit-Reset`, `X-Sib-RateLimit-Reset`, the
/// 24-hour fields) means, when a provider profile says so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ResetUnit {
    /// Seconds from now (Reddit, Supabase, Close, every IETF draft).
    DeltaSeconds,
    /// Milliseconds from now (Prisjakt).
    DeltaMillis,
    /// Unix seconds (GitHub, X, Okta, Discord, GitLab).
    EpochSeconds,
    /// Unix milliseconds (OpenRouter).
    EpochMillis,
}

/// A provider's unit rules, chosen by the request's host.
///
/// The built-in profiles cover the providers whose units differ from, or
/// are only guessed by, the magnitude rule (see the module docs); a user's
/// configuration can build its own with [`Profile::new`].
///
/// ```
/// use ratekeeper_core::headers::{Profile, ResetUnit};
///
/// assert_eq!(Profile::for_host(b"api.github.com").reset_unit(), Some(ResetUnit::EpochSeconds));
/// assert_eq!(Profile::for_host(b"API.Prisjakt.nu:443").reset_unit(), Some(ResetUnit::DeltaMillis));
/// assert_eq!(Profile::for_host(b"example.org"), Profile::GENERIC);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Profile {
    name: &'static str,
    reset_unit: Option<ResetUnit>,
}

/// Host suffixes and their profiles. A suffix matches the host itself and
/// any subdomain of it.
const BUILT_IN: [(&str, Profile); 22] = [
    ("close.com", Profile::new("close", Some(ResetUnit::DeltaSeconds))),
    (
        "github.com",
        Profile::new("github", Some(ResetUnit::EpochSeconds)),
    ),
    (
        "gitlab.com",
        Profile::new("gitlab", Some(ResetUnit::EpochSeconds)),
    ),
    ("x.com", Profile::new("x", Some(ResetUnit::EpochSeconds))),
    ("twitter.com", Profile::new("x", Some(ResetUnit::EpochSeconds))),
    ("okta.com", Profile::new("okta", Some(ResetUnit::EpochSeconds))),
    (
        "discord.com",
        Profile::new("discord", Some(ResetUnit::EpochSeconds)),
    ),
    (
        "discordapp.com",
        Profile::new("discord", Some(ResetUnit::EpochSeconds)),
    ),
    (
        "reddit.com",
        Profile::new("reddit", Some(ResetUnit::DeltaSeconds)),
    ),
    (
        "supabase.com",
        Profile::new("supabase", Some(ResetUnit::DeltaSeconds)),
    ),
    (
        "supabase.co",
        Profile::new("supabase", Some(ResetUnit::DeltaSeconds)),
    ),
    (
        "prisjakt.nu",
        Profile::new("prisjakt", Some(ResetUnit::DeltaMillis)),
    ),
    (
        "openrouter.ai",
        Profile::new("openrouter", Some(ResetUnit::EpochMillis)),
    ),
    (
        "zendesk.com",
        Profile::new("zendesk", Some(ResetUnit::DeltaSeconds)),
    ),
    ("brevo.com", Profile::new("brevo", Some(ResetUnit::DeltaSeconds))),
    (
        "sendinblue.com",
        Profile::new("brevo", Some(ResetUnit::DeltaSeconds)),
    ),
    ("cloudflare.com", Profile::new("cloudflare", None)),
    ("atlassian.net", Profile::new("atlassian", None)),
    ("lemlist.com", Profile::new("lemlist", None)),
    ("myshopify.com", Profile::new("shopify", None)),
    ("hubapi.com", Profile::new("hubspot", None)),
    ("leadconnectorhq.com", Profile::new("gohighlevel", None)),
];

impl Profile {
    /// No host-specific rule: the magnitude rule decides.
    pub const GENERIC: Profile = Profile::new("generic", None);

    /// A profile named `name` that reads bare reset numbers in `reset_unit`
    /// (`None`: by the magnitude rule).
    pub const fn new(name: &'static str, reset_unit: Option<ResetUnit>) -> Profile {
        Profile { name, reset_unit }
    }

    /// The built-in profile for `host` (a port and letter case are
    /// ignored), or [`Profile::GENERIC`].
    pub fn for_host(host: &[u8]) -> Profile {
        let host = host.trim_ascii();
        let host = match host.iter().rposition(|&b| b == b':') {
            Some(colon)
                if host
                    .get(colon.saturating_add(1)..)
                    .is_some_and(|port| port.iter().all(u8::is_ascii_digit)) =>
            {
                host.get(..colon).unwrap_or(host)
            }
            _ => host,
        };
        let host = host.strip_suffix(b".").unwrap_or(host);
        BUILT_IN
            .iter()
            .find(|(suffix, _)| host_has_suffix(host, suffix.as_bytes()))
            .map_or(Profile::GENERIC, |&(_, profile)| profile)
    }

    /// The profile's name (`"github"`, `"generic"`, ...).
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// What a bare reset number means, if the profile says.
    pub const fn reset_unit(&self) -> Option<ResetUnit> {
        self.reset_unit
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::GENERIC
    }
}

/// Whether `host` is `suffix` or a subdomain of it.
fn host_has_suffix(host: &[u8], suffix: &[u8]) -> bool {
    let Some(start) = host.len().checked_sub(suffix.len()) else {
        return false;
    };
    let tail_matches = host
        .get(start..)
        .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix));
    tail_matches && (start == 0 || host.get(start.wrapping_sub(1)) == Some(&b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_match_whole_labels() {
        assert_eq!(Profile::for_host(b"api.close.com").name(), "close");
        assert_eq!(Profile::for_host(b"close.com").name(), "close");
        assert_eq!(Profile::for_host(b"notclose.com").name(), "generic");
        assert_eq!(Profile::for_host(b"api.x.com").name(), "x");
        assert_eq!(Profile::for_host(b"box.com").name(), "generic");
        assert_eq!(Profile::for_host(b"").name(), "generic");
    }
}
