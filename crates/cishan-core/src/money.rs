//! Money as whole fen (0.01 yuan) in an `i64`.
//!
//! Amounts are integers from the moment they are parsed: no floating point ever touches money,
//! so sums reconcile to the fen and nothing depends on rounding modes.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of money in fen. Signed, because ledgers need reversals and balances; whether a
/// given amount may be negative is the caller's rule (donations, for instance, come from
/// [`parse_yuan`], which refuses anything below one fen).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Fen(i64);

impl Fen {
    /// No money.
    pub const ZERO: Fen = Fen(0);

    /// Wraps a count of fen.
    pub const fn new(fen: i64) -> Fen {
        Fen(fen)
    }

    /// The count of fen.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// Adds, or `None` on overflow; overflow is an error to report, never to wrap.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    /// Subtracts, or `None` on overflow.
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }
}

/// Formats as yuan the way people read it on a receipt: `¥1,234.56`, `-¥1.00`.
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let magnitude = self.0.unsigned_abs();
        let yuan = (magnitude / 100).to_string();
        let mut grouped = String::with_capacity(yuan.len() + yuan.len() / 3);
        for (i, digit) in yuan.chars().enumerate() {
            if i > 0 && (yuan.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}¥{grouped}.{:02}", magnitude % 100)
    }
}

/// Why a text is not an acceptable amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing but spaces (or a bare currency sign).
    #[error("no amount was given")]
    Empty,
    /// A character that has no place in an amount, such as a letter.
    #[error("an amount may contain only digits, one decimal point and thousands separators; found {found:?}")]
    InvalidCharacter {
        /// The offending character.
        found: char,
    },
    /// More than one decimal point.
    #[error("an amount has at most one decimal point")]
    MultipleDecimalPoints,
    /// A decimal point with no digits on one side, like `1.` or `.5`.
    #[error("a decimal point needs digits on both sides")]
    IncompleteNumber,
    /// More than two digits after the decimal point: the smallest unit is one fen.
    #[error("an amount has at most two decimals (fen); found {found}")]
    TooManyDecimals {
        /// How many digits followed the point.
        found: usize,
    },
    /// Thousands separators not in groups of three before the point, e.g. `1,00`, or the
    /// European `1.000,00`, which would otherwise be read as one yuan.
    #[error("thousands separators must group three digits before the decimal point")]
    MisplacedSeparator,
    /// Zero or negative where a positive amount is required.
    #[error("the amount must be greater than zero")]
    NotPositive,
    /// Larger than the platform can hold.
    #[error("the amount is too large")]
    TooLarge,
}

impl AmountError {
    /// A stable machine code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "amount.empty",
            Self::InvalidCharacter { .. } => "amount.invalid_character",
            Self::MultipleDecimalPoints => "amount.multiple_decimal_points",
            Self::IncompleteNumber => "amount.incomplete_number",
            Self::TooManyDecimals { .. } => "amount.too_many_decimals",
            Self::MisplacedSeparator => "amount.misplaced_separator",
            Self::NotPositive => "amount.not_positive",
            Self::TooLarge => "amount.too_large",
        }
    }

    /// A message for the person who typed the amount, saying what to do.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "请输入金额，例如 100 或 100.50".to_owned(),
            Self::InvalidCharacter { found } => {
                format!("金额中不能有“{found}”，请只填写数字和小数点，例如 1000.50")
            }
            Self::MultipleDecimalPoints => "金额中只能有一个小数点，请核对后重新输入".to_owned(),
            Self::IncompleteNumber => {
                "小数点前后都需要有数字，例如 0.50 或 12.00，请核对后重新输入".to_owned()
            }
            Self::TooManyDecimals { .. } => {
                "金额最多保留两位小数（精确到分），请核对后重新输入".to_owned()
            }
            Self::MisplacedSeparator => {
                "千位分隔符“,”位置不对：应每三位一组，例如 1,000.00；也可以不写分隔符".to_owned()
            }
            Self::NotPositive => "金额必须大于零，请重新输入".to_owned(),
            Self::TooLarge => "金额过大，请核对后重新输入".to_owned(),
        }
    }
}

/// Parses a positive amount written in yuan, exactly, into fen.
///
/// Accepts what people type or paste: `1000`, `1000.5`, `1,000.00`, `¥1,000`, `￥1,000`,
/// full-width digits and punctuation (`１，０００．５`), a trailing `元`, and surrounding spaces.
/// Refuses anything that could be misread rather than guessing: more than two decimals,
/// separators not grouping three digits, the European `1.000,00`, and any letters.
pub fn parse_yuan(text: &str) -> Result<Fen, AmountError> {
    let fen = parse_yuan_allow_zero(text)?;
    if fen == Fen::ZERO {
        Err(AmountError::NotPositive)
    } else {
        Ok(fen)
    }
}

/// Like [`parse_yuan`] but accepts zero, for fields such as a minimum or a starting balance.
/// Negative amounts are still refused: a person never types a reversal.
pub fn parse_yuan_allow_zero(text: &str) -> Result<Fen, AmountError> {
    let normalised: String = text.chars().map(narrow).collect();
    let mut rest = normalised.trim();
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        negative = true;
        rest = r.trim_start();
    }
    if let Some(r) = rest.strip_prefix('¥') {
        rest = r.trim_start();
    }
    if !negative {
        if let Some(r) = rest.strip_prefix('-') {
            negative = true;
            rest = r.trim_start();
        }
    }
    if let Some(r) = rest.strip_suffix('元') {
        rest = r.trim_end();
    }
    if rest.is_empty() {
        return Err(AmountError::Empty);
    }
    if let Some(found) = rest
        .chars()
        .find(|c| !(c.is_ascii_digit() || *c == ',' || *c == '.'))
    {
        return Err(AmountError::InvalidCharacter { found });
    }
    let (whole, fraction) = match rest.split_once('.') {
        None => (rest, ""),
        Some((_, after)) if after.contains('.') => return Err(AmountError::MultipleDecimalPoints),
        Some((before, after)) => {
            if after.contains(',') {
                return Err(AmountError::MisplacedSeparator);
            }
            if before.is_empty() || after.is_empty() {
                return Err(AmountError::IncompleteNumber);
            }
            (before, after)
        }
    };
    if fraction.len() > 2 {
        return Err(AmountError::TooManyDecimals {
            found: fraction.len(),
        });
    }
    if whole.contains(',') {
        let mut groups = whole.split(',');
        let first = groups.next().unwrap_or_default();
        if first.is_empty() || first.len() > 3 || groups.any(|g| g.len() != 3) {
            return Err(AmountError::MisplacedSeparator);
        }
    }
    let mut fen: i64 = 0;
    let digits = whole
        .bytes()
        .filter(u8::is_ascii_digit)
        .chain(fraction.bytes())
        .chain(std::iter::repeat_n(b'0', 2 - fraction.len()));
    for digit in digits {
        fen = fen
            .checked_mul(10)
            .and_then(|f| f.checked_add(i64::from(digit - b'0')))
            .ok_or(AmountError::TooLarge)?;
    }
    if negative && fen != 0 {
        return Err(AmountError::NotPositive);
    }
    Ok(Fen(fen))
}

/// Maps the full-width forms a Chinese input method produces to their ASCII equivalents.
fn narrow(c: char) -> char {
    match c {
        '０'..='９' => {
            char::from_u32(u32::from(c) - u32::from('０') + u32::from('0')).unwrap_or(c)
        }
        '，' => ',',
        '．' => '.',
        '－' => '-',
        '￥' => '¥',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn display() {
        let cases = [
            (0, "¥0.00"),
            (1, "¥0.01"),
            (100, "¥1.00"),
            (123_456, "¥1,234.56"),
            (100_000_000, "¥1,000,000.00"),
            (-100, "-¥1.00"),
            (-123_456, "-¥1,234.56"),
            (i64::MIN, "-¥92,233,720,368,547,758.08"),
        ];
        for (fen, text) in cases {
            assert_eq!(Fen::new(fen).to_string(), text);
        }
    }

    #[test]
    fn arithmetic_and_serde() {
        assert_eq!(Fen::new(1).checked_add(Fen::new(2)), Some(Fen::new(3)));
        assert_eq!(Fen::new(i64::MAX).checked_add(Fen::new(1)), None);
        assert_eq!(Fen::new(1).checked_sub(Fen::new(3)), Some(Fen::new(-2)));
        assert_eq!(Fen::new(i64::MIN).checked_sub(Fen::new(1)), None);
        assert_eq!(serde_json::to_string(&Fen::new(150)).unwrap(), "150");
        assert_eq!(serde_json::from_str::<Fen>("150").unwrap(), Fen::new(150));
    }

    #[test]
    fn accepted_amounts() {
        let cases = [
            ("1000", 100_000),
            ("1000.5", 100_050),
            ("1000.50", 100_050),
            ("1,000.00", 100_000),
            ("1,234,567.89", 123_456_789),
            ("￥1,000", 100_000),
            ("¥1,000", 100_000),
            ("¥ 1000", 100_000),
            ("  12.3  ", 1230),
            ("１，０００．５", 100_050),
            ("100元", 10_000),
            ("0.01", 1),
            ("007", 700),
        ];
        for (text, fen) in cases {
            assert_eq!(parse_yuan(text), Ok(Fen::new(fen)), "{text}");
        }
    }

    #[test]
    fn refused_amounts() {
        use AmountError::*;
        let cases = [
            ("", Empty),
            ("   ", Empty),
            ("¥", Empty),
            ("1.001", TooManyDecimals { found: 3 }),
            ("-5", NotPositive),
            ("-¥1.00", NotPositive),
            ("¥-1", NotPositive),
            ("0", NotPositive),
            ("0.00", NotPositive),
            ("1,00", MisplacedSeparator),
            ("10,00.00", MisplacedSeparator),
            ("1.000,00", MisplacedSeparator),
            (",100", MisplacedSeparator),
            ("1000,", MisplacedSeparator),
            ("1.2.3", MultipleDecimalPoints),
            ("1.", IncompleteNumber),
            (".5", IncompleteNumber),
            ("RMB100", InvalidCharacter { found: 'R' }),
            ("12a", InvalidCharacter { found: 'a' }),
            ("1e5", InvalidCharacter { found: 'e' }),
            ("+5", InvalidCharacter { found: '+' }),
            ("100000000000000000", TooLarge),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_yuan(text), Err(expected), "{text}");
        }
    }

    #[test]
    fn zero_allowed_when_asked() {
        assert_eq!(parse_yuan_allow_zero("0"), Ok(Fen::ZERO));
        assert_eq!(parse_yuan_allow_zero("-1"), Err(AmountError::NotPositive));
    }

    #[test]
    fn every_error_has_a_code_and_message() {
        use AmountError::*;
        let all = [
            Empty,
            InvalidCharacter { found: 'x' },
            MultipleDecimalPoints,
            IncompleteNumber,
            TooManyDecimals { found: 3 },
            MisplacedSeparator,
            NotPositive,
            TooLarge,
        ];
        let mut codes: Vec<_> = all.iter().map(AmountError::code).collect();
        assert!(codes.iter().all(|c| c.starts_with("amount.")));
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert!(all.iter().all(|e| !e.message_zh().is_empty()));
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(fen in 1i64..=i64::MAX / 100) {
            let shown = Fen::new(fen).to_string();
            prop_assert_eq!(parse_yuan(&shown), Ok(Fen::new(fen)));
            prop_assert_eq!(parse_yuan(shown.trim_start_matches('¥')), Ok(Fen::new(fen)));
        }
    }
}
