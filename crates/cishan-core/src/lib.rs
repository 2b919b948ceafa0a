//! The pure domain of the cishan charity platform: identifiers, money, masking, indicators and
//! region packs.
//!
//! Nothing here does IO, reads a clock or draws random numbers; callers pass those in. That
//! keeps every rule testable with plain data tables and keeps the rules identical whichever
//! binary, database or web layer uses them.

pub mod assistance;
pub mod code;
pub mod dispatch;
pub mod ids;
pub mod indicator;
pub mod ledger;
pub mod mask;
pub mod money;
pub mod order;
pub mod points;
pub mod region;
pub mod volunteer;

pub use ids::{
    CreditCode, CreditCodeError, DivisionCode, DivisionCodeError, IdNumber, IdNumberError,
};
pub use indicator::{
    evaluate, parse_plain_decimal, Better, Comparator, Status, Target, TargetError,
    TargetErrorReason,
};
pub use ledger::{
    match_after_refund, match_amount, split_by_weights, take_fifo, MatchTerms, Shortfall,
    SplitError,
};
pub use mask::{mask_name, mask_phone, ANONYMOUS_ZH};
pub use money::{parse_yuan, parse_yuan_allow_zero, AmountError, Fen};
pub use region::{
    Division, DivisionLevel, IndicatorDef, IndicatorSource, Metric, PackError, PackFiles,
    PackLocation, RegionPack, ServiceCategory,
};
/// Re-exported so callers name the same decimal type the core uses for indicator values.
pub use rust_decimal::Decimal;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Parsers face whatever people type or paste; none may panic, whatever the bytes.
        #[test]
        fn parsers_never_panic(text in "\\PC{0,24}") {
            let _ = IdNumber::parse(&text);
            let _ = CreditCode::parse(&text);
            let _ = CreditCode::parse_unchecked_checksum(&text);
            let _ = DivisionCode::parse(&text);
            let _ = parse_yuan(&text);
            let _ = mask_name(&text);
            let _ = mask_phone(&text);
            if let Ok(target) = Target::parse(&text) {
                prop_assert_eq!(target.raw, text);
            }
        }

        #[test]
        fn parsers_never_panic_on_near_misses(text in "[0-9xX２a ]{14,19}") {
            let _ = IdNumber::parse(&text);
            let _ = CreditCode::parse(&text);
        }
    }
}
