//! Instants are stored as fixed-width RFC 3339 UTC text with microseconds, so that text order
//! is time order in both backends and a person reading the database sees a real time.

use jiff::Timestamp;

use crate::StoreError;

/// Formats an instant for storage: `2026-12-03T13:41:02.123456Z`.
pub fn format_instant(at: Timestamp) -> String {
    // Truncate to microseconds: the stored precision, so a round trip is exact.
    at.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Parses an instant written by [`format_instant`].
pub fn parse_instant(text: &str) -> Result<Timestamp, StoreError> {
    text.parse::<Timestamp>()
        .map_err(|e| StoreError::Corrupt(format!("instant `{text}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_fixed_width_and_round_trip() {
        let at: Timestamp = "2026-12-03T13:41:02Z".parse().unwrap();
        let text = format_instant(at);
        assert_eq!(text, "2026-12-03T13:41:02.000000Z");
        assert_eq!(parse_instant(&text).unwrap(), at);
    }
}
