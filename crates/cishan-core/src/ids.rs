//! Identifiers issued by the state: resident ID numbers, unified social credit codes and
//! statistical division codes.
//!
//! Each is parsed once, at the boundary, into a type whose existence proves the value is
//! well formed, so nothing inside the platform re-checks it. Positions in errors count from 1,
//! as a person reading the printed number counts them.

use std::fmt;
use std::str::FromStr;

use jiff::civil::Date;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Province-level codes of GB/T 2260 (including Taiwan, Hong Kong and Macao, which appear in
/// residence permits). Anything else in the first two digits is a typo, not a real place.
const PROVINCE_CODES: [&str; 34] = [
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37", "41",
    "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64", "65", "71",
    "81", "82",
];

/// Whether the first two characters of `code` are a real province-level code.
fn starts_with_province(code: &str) -> bool {
    code.get(..2).is_some_and(|p| PROVINCE_CODES.contains(&p))
}

/// The first character that is not an ASCII digit, with its 1-based position.
fn first_non_digit(s: &str, offset: usize) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_digit())
        .map(|(i, c)| (offset + i + 1, c))
}

// ---------------------------------------------------------------------------------------------
// Resident ID number (GB 11643-1999)
// ---------------------------------------------------------------------------------------------

/// GB 11643 weights for positions 1..=17.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
/// Check characters indexed by the weighted sum mod 11.
const ID_CHECK_CHARS: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

/// A valid 18-character resident ID number.
///
/// ID numbers are personal data: `Debug` and `Display` print only the masked form, and the type
/// deliberately implements neither `Serialize` nor `Deserialize`, so every place that needs the
/// full number must call [`IdNumber::expose`] and can be found with a search.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdNumber(String);

/// Why a text is not a valid resident ID number. None of the messages repeat the number, so an
/// error can be shown or logged without leaking it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Neither 18 characters nor an old 15-digit number.
    #[error("an ID number has 18 characters (or 15 digits for an old one); found {found}")]
    WrongLength {
        /// Number of characters found after trimming.
        found: usize,
    },
    /// A character that cannot appear at that position.
    #[error("character {position} of the ID number must be a digit (or X at position 18); found {found:?}")]
    BadCharacter {
        /// 1-based position in the text as entered.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// Positions 7–14 are not a real calendar date.
    #[error("the birth date in the ID number is not a real calendar date")]
    ImpossibleDate,
    /// The address code is not a known region.
    #[error("the address code of the ID number is not a known region")]
    UnknownRegion,
    /// The check character does not match the other 17.
    #[error("the ID number's check character should be {expected}, found {found}")]
    ChecksumMismatch {
        /// What the first 17 characters call for.
        expected: char,
        /// What was entered.
        found: char,
    },
}

impl IdNumberError {
    /// A stable machine code for clients and logs; the wording of messages may change, this may not.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongLength { .. } => "id_number.wrong_length",
            Self::BadCharacter { .. } => "id_number.bad_character",
            Self::ImpossibleDate => "id_number.impossible_date",
            Self::UnknownRegion => "id_number.unknown_region",
            Self::ChecksumMismatch { .. } => "id_number.checksum_mismatch",
        }
    }

    /// A message for the person who typed the number, saying what to fix.
    pub fn message_zh(&self) -> String {
        match self {
            Self::WrongLength { found } => {
                format!("身份证号码应为18位，当前为{found}位，请核对后重新输入")
            }
            Self::BadCharacter { position, found } => format!(
                "身份证号码第{position}位“{found}”无效：前17位只能是数字，第18位可以是数字或X，请核对后重新输入"
            ),
            Self::ImpossibleDate => {
                "身份证号码中的出生日期（第7至14位）不是有效日期，请核对后重新输入".to_owned()
            }
            Self::UnknownRegion => {
                "身份证号码前6位不是有效的地区代码，请核对后重新输入".to_owned()
            }
            Self::ChecksumMismatch { .. } => {
                "身份证号码校验位不符，可能有数字输错或顺序颠倒，请逐位核对后重新输入".to_owned()
            }
        }
    }
}

impl IdNumber {
    /// Parses an ID number as a person types it: surrounding spaces are ignored, a lowercase `x`
    /// is accepted, and an old 15-digit number is converted to 18 digits (19xx century plus a
    /// computed check character) so that one person has one number in the platform.
    ///
    /// The birth date is not compared with today: the core has no clock. Callers that need that
    /// check compare [`IdNumber::birth_date`] with the date they pass in.
    pub fn parse(text: &str) -> Result<IdNumber, IdNumberError> {
        let text = text.trim();
        let length = text.chars().count();
        let number = match length {
            15 => {
                if let Some((position, found)) = first_non_digit(text, 0) {
                    return Err(IdNumberError::BadCharacter { position, found });
                }
                let body = format!("{}19{}", &text[..6], &text[6..]);
                let check = Self::check_char(&body);
                let mut number = body;
                number.push(check);
                number
            }
            18 => {
                let mut number = String::with_capacity(18);
                for (i, found) in text.chars().enumerate() {
                    let c = if i == 17 {
                        found.to_ascii_uppercase()
                    } else {
                        found
                    };
                    if !(c.is_ascii_digit() || (i == 17 && c == 'X')) {
                        return Err(IdNumberError::BadCharacter {
                            position: i + 1,
                            found,
                        });
                    }
                    number.push(c);
                }
                number
            }
            found => return Err(IdNumberError::WrongLength { found }),
        };
        if !starts_with_province(&number) {
            return Err(IdNumberError::UnknownRegion);
        }
        if birth_date_of(&number).is_none() {
            return Err(IdNumberError::ImpossibleDate);
        }
        let expected = Self::check_char(&number[..17]);
        let found = number[17..].chars().next().unwrap_or_default();
        if expected != found {
            return Err(IdNumberError::ChecksumMismatch { expected, found });
        }
        Ok(IdNumber(number))
    }

    /// Like [`IdNumber::parse`], and also requires the 6-digit address code to be one the
    /// caller knows (for example, the divisions of a region pack, or a full GB/T 2260 list).
    /// The core carries no national list, so the caller supplies the lookup.
    pub fn parse_with_regions(
        text: &str,
        known: impl Fn(&str) -> bool,
    ) -> Result<IdNumber, IdNumberError> {
        let number = Self::parse(text)?;
        if known(number.region_code()) {
            Ok(number)
        } else {
            Err(IdNumberError::UnknownRegion)
        }
    }

    /// Builds a valid number from its parts, computing the check character. Meant for demo and
    /// test data: the caller chooses the values (randomly or not), so this stays deterministic.
    ///
    /// `sequence` must be in `0..=999`; larger values, a region that is not six digits, or a
    /// year outside 1000–9999 give the same error that parsing such a number would.
    pub fn from_parts(region: &str, birth: Date, sequence: u16) -> Result<IdNumber, IdNumberError> {
        let body = format!(
            "{region}{:04}{:02}{:02}{sequence:03}",
            birth.year(),
            birth.month(),
            birth.day()
        );
        if body.len() == 17 && body.bytes().all(|b| b.is_ascii_digit()) {
            let check = Self::check_char(&body);
            Self::parse(&format!("{body}{check}"))
        } else {
            // A malformed body never reaches the checksum, so the placeholder check character
            // only serves to let `parse` name what is wrong with the body.
            Self::parse(&format!("{body}0"))
        }
    }

    /// The GB 11643 check character for the first 17 digits.
    ///
    /// # Panics
    ///
    /// If `first17` is not exactly 17 ASCII digits: callers validate first, so anything else is
    /// a programmer error.
    pub fn check_char(first17: &str) -> char {
        assert!(
            first17.len() == 17 && first17.bytes().all(|b| b.is_ascii_digit()),
            "IdNumber::check_char needs exactly 17 ASCII digits"
        );
        let sum: u32 = first17
            .bytes()
            .zip(ID_WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        ID_CHECK_CHARS[(sum % 11) as usize]
    }

    /// The full number. Named so that every use of the unmasked number can be found and
    /// reviewed; prefer [`IdNumber::masked`] for anything shown or logged.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The form shown to people: first 6 and last 4 characters, e.g. `330302********123X`.
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }

    /// The 6-digit address code (where the number was first issued, not where the person lives).
    pub fn region_code(&self) -> &str {
        &self.0[..6]
    }

    /// The birth date encoded in positions 7–14.
    pub fn birth_date(&self) -> Date {
        // The date was checked in `parse`, the only way to build an `IdNumber`.
        birth_date_of(&self.0).expect("IdNumber holds a valid birth date")
    }

    /// Sex as recorded by the sequence number: odd is male, even is female.
    pub fn is_male(&self) -> bool {
        self.0.as_bytes()[16] % 2 == 1
    }
}

/// The birth date in an 18-character number whose first 17 characters are digits.
fn birth_date_of(number: &str) -> Option<Date> {
    let year: i16 = number[6..10].parse().ok()?;
    let month: i8 = number[10..12].parse().ok()?;
    let day: i8 = number[12..14].parse().ok()?;
    Date::new(year, month, day).ok()
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl FromStr for IdNumber {
    type Err = IdNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Unified social credit code (GB 32100-2015)
// ---------------------------------------------------------------------------------------------

/// The GB 32100 alphabet; a character's value is its index. I, O, S, V and Z are left out
/// because they are easily confused with 1, 0, 5, U and 2.
const CREDIT_ALPHABET: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
/// GB 32100 weights for positions 1..=17 (3^i mod 31).
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];
/// Registering authorities: 1–9 and A–G are the ones the standard allots to departments, Y is
/// "other". The check is loose on purpose (the standard lets the list grow), it only catches
/// characters that no authority has.
const CREDIT_AUTHORITIES: &str = "123456789ABCDEFGY";

fn credit_value(c: char) -> Option<u32> {
    CREDIT_ALPHABET.find(c).and_then(|i| u32::try_from(i).ok())
}

/// A unified social credit code of an organisation.
///
/// The value is always well formed (length, alphabet, authority, division). Its check
/// character may still be wrong when it came from [`CreditCode::parse_unchecked_checksum`]:
/// some codes issued in pilot regions before 2016 fail the check and staff accept them after
/// review. [`CreditCode::checksum_ok`] tells the two apart.
///
/// Credit codes are public, so unlike [`IdNumber`] this type prints and serialises in full.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CreditCode(String);

/// Why a text is not a valid credit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    /// Not 18 characters.
    #[error("a unified social credit code has 18 characters; found {found}")]
    WrongLength {
        /// Number of characters found after trimming.
        found: usize,
    },
    /// A character outside the alphabet, or one not allowed at its position.
    #[error("character {position} of the credit code is not allowed there; found {found:?}")]
    BadCharacter {
        /// 1-based position.
        position: usize,
        /// The offending character (after upper-casing).
        found: char,
    },
    /// Positions 3–8 do not start with a real province code.
    #[error("the division code in the credit code (positions 3-8) is not a known region")]
    UnknownRegion,
    /// Well formed, but the check character does not match. Kept apart from the other errors
    /// because some real pilot-region codes from before 2016 end up here and need a person's
    /// review rather than a rejection.
    #[error("the credit code {code}'s check character should be {expected}, found {found}")]
    ChecksumMismatch {
        /// What the first 17 characters call for.
        expected: char,
        /// What was entered.
        found: char,
        /// The normalised code, so a review queue can show it (credit codes are public).
        code: String,
    },
}

impl CreditCodeError {
    /// A stable machine code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongLength { .. } => "credit_code.wrong_length",
            Self::BadCharacter { .. } => "credit_code.bad_character",
            Self::UnknownRegion => "credit_code.unknown_region",
            Self::ChecksumMismatch { .. } => "credit_code.checksum_mismatch",
        }
    }

    /// A message for the person who typed the code, saying what to fix.
    pub fn message_zh(&self) -> String {
        match self {
            Self::WrongLength { found } => {
                format!("统一社会信用代码应为18位，当前为{found}位，请核对后重新输入")
            }
            Self::BadCharacter { position, found } => format!(
                "统一社会信用代码第{position}位“{found}”无效：代码只含数字和大写字母（不含I、O、S、V、Z），请核对后重新输入"
            ),
            Self::UnknownRegion => {
                "统一社会信用代码第3至8位不是有效的行政区划代码，请核对后重新输入".to_owned()
            }
            Self::ChecksumMismatch { .. } => {
                "统一社会信用代码校验位不符。请核对是否输错；如确为2016年前试点地区发放的代码，请提交工作人员人工审核".to_owned()
            }
        }
    }
}

impl CreditCode {
    /// Parses a credit code strictly: a checksum mismatch is an error
    /// ([`CreditCodeError::ChecksumMismatch`]). Spaces around it are ignored and letters are
    /// upper-cased, because people copy codes from documents in either case.
    pub fn parse(text: &str) -> Result<CreditCode, CreditCodeError> {
        let (code, expected) = Self::parse_shape(text)?;
        let found = code.0[17..].chars().next().unwrap_or_default();
        if expected == found {
            Ok(code)
        } else {
            Err(CreditCodeError::ChecksumMismatch {
                expected,
                found,
                code: code.0,
            })
        }
    }

    /// Parses a code for a staff review flow: a malformed code is still an error, but a
    /// checksum mismatch is returned as `Ok((code, false))` so a person can decide.
    pub fn parse_unchecked_checksum(text: &str) -> Result<(CreditCode, bool), CreditCodeError> {
        let (code, expected) = Self::parse_shape(text)?;
        let ok = code.0.ends_with(expected);
        Ok((code, ok))
    }

    /// Builds a code from its parts, computing the check character. Meant for demo and test
    /// data; a malformed part gives the same error that parsing such a code would.
    pub fn from_parts(
        authority: char,
        category: char,
        division: &str,
        org_code9: &str,
    ) -> Result<CreditCode, CreditCodeError> {
        let mut body = format!("{authority}{category}{division}{org_code9}");
        body.make_ascii_uppercase();
        let well_formed =
            body.chars().count() == 17 && body.chars().all(|c| credit_value(c).is_some());
        // A malformed body never reaches the checksum, so the placeholder only lets `parse`
        // name what is wrong with it.
        let check = if well_formed {
            Self::check_char(&body)
        } else {
            '0'
        };
        Self::parse(&format!("{body}{check}"))
    }

    /// Checks everything but the checksum; returns the code and the check character it should
    /// have.
    fn parse_shape(text: &str) -> Result<(CreditCode, char), CreditCodeError> {
        let mut code = text.trim().to_owned();
        code.make_ascii_uppercase();
        let length = code.chars().count();
        if length != 18 {
            return Err(CreditCodeError::WrongLength { found: length });
        }
        for (i, c) in code.chars().enumerate() {
            if credit_value(c).is_none() {
                return Err(CreditCodeError::BadCharacter {
                    position: i + 1,
                    found: c,
                });
            }
        }
        // All 18 characters are now ASCII, so byte slicing is safe.
        let authority = code.as_bytes()[0] as char;
        if !CREDIT_AUTHORITIES.contains(authority) {
            return Err(CreditCodeError::BadCharacter {
                position: 1,
                found: authority,
            });
        }
        if let Some((position, found)) = first_non_digit(&code[2..8], 2) {
            return Err(CreditCodeError::BadCharacter { position, found });
        }
        if !starts_with_province(&code[2..8]) {
            return Err(CreditCodeError::UnknownRegion);
        }
        let expected = Self::check_char(&code[..17]);
        Ok((CreditCode(code), expected))
    }

    /// The GB 32100 check character for the first 17 characters.
    ///
    /// # Panics
    ///
    /// If `first17` is not 17 characters of the credit-code alphabet (a programmer error:
    /// callers validate first).
    pub fn check_char(first17: &str) -> char {
        let values: Vec<u32> = first17
            .chars()
            .map(|c| credit_value(c).expect("CreditCode::check_char needs alphabet characters"))
            .collect();
        assert!(
            values.len() == 17,
            "CreditCode::check_char needs exactly 17 characters"
        );
        let sum: u32 = values.iter().zip(CREDIT_WEIGHTS).map(|(v, w)| v * w).sum();
        let c = 31 - sum % 31;
        if c == 31 {
            '0'
        } else {
            CREDIT_ALPHABET.as_bytes()[c as usize] as char
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the check character matches; false only for codes accepted through
    /// [`CreditCode::parse_unchecked_checksum`].
    pub fn checksum_ok(&self) -> bool {
        self.0.ends_with(Self::check_char(&self.0[..17]))
    }

    /// Position 1: who registered the organisation (`5` = civil affairs, `9` = market
    /// regulation, `1` = public institutions, `Y` = other).
    pub fn registering_authority(&self) -> char {
        self.0.as_bytes()[0] as char
    }

    /// Position 2: the organisation category, whose meaning depends on the authority (for civil
    /// affairs: `1` social group, `2` social service organisation, `3` foundation, `9` other).
    pub fn category(&self) -> char {
        self.0.as_bytes()[1] as char
    }

    /// Positions 3–8: the division code of the registering authority.
    pub fn division_code(&self) -> &str {
        &self.0[2..8]
    }
}

impl fmt::Display for CreditCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CreditCode {
    type Err = CreditCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for CreditCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Accepts any well-formed code, including one whose checksum staff have accepted, so that
/// every `CreditCode` that can be serialised can be read back.
impl<'de> Deserialize<'de> for CreditCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_unchecked_checksum(&text)
            .map(|(code, _)| code)
            .map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------------
// Statistical division code
// ---------------------------------------------------------------------------------------------

/// A statistical division code: 2 (province), 4 (city), 6 (county), 9 (street or town) or 12
/// (community or village) digits. Codes nest by prefix, so a shorter code is an ancestor of a
/// longer one that starts with it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DivisionCode(String);

/// Why a text is not a division code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DivisionCodeError {
    /// Not 2, 4, 6, 9 or 12 characters.
    #[error("a division code has 2, 4, 6, 9 or 12 digits; found {found} characters")]
    WrongLength {
        /// Number of characters found after trimming.
        found: usize,
    },
    /// Not a digit.
    #[error("character {position} of the division code must be a digit; found {found:?}")]
    BadCharacter {
        /// 1-based position.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// The first two digits are not a province.
    #[error("the division code does not start with a province code")]
    UnknownRegion,
}

impl DivisionCodeError {
    /// A stable machine code for clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongLength { .. } => "division_code.wrong_length",
            Self::BadCharacter { .. } => "division_code.bad_character",
            Self::UnknownRegion => "division_code.unknown_region",
        }
    }

    /// A message for the person who entered the code.
    pub fn message_zh(&self) -> String {
        match self {
            Self::WrongLength { found } => {
                format!("区划代码应为2、4、6、9或12位数字，当前为{found}位，请核对后重新输入")
            }
            Self::BadCharacter { position, found } => {
                format!("区划代码第{position}位“{found}”不是数字，请核对后重新输入")
            }
            Self::UnknownRegion => "区划代码前2位不是有效的省级代码，请核对后重新输入".to_owned(),
        }
    }
}

impl DivisionCode {
    /// Parses a division code, ignoring surrounding spaces.
    pub fn parse(text: &str) -> Result<DivisionCode, DivisionCodeError> {
        let text = text.trim();
        let length = text.chars().count();
        if let Some((position, found)) = first_non_digit(text, 0) {
            return Err(DivisionCodeError::BadCharacter { position, found });
        }
        if ![2, 4, 6, 9, 12].contains(&length) {
            return Err(DivisionCodeError::WrongLength { found: length });
        }
        if !starts_with_province(text) {
            return Err(DivisionCodeError::UnknownRegion);
        }
        Ok(DivisionCode(text.to_owned()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` is `other` or lies inside it (codes nest by prefix).
    pub fn is_within(&self, other: &DivisionCode) -> bool {
        self.0.starts_with(&other.0)
    }
}

impl fmt::Display for DivisionCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DivisionCode {
    type Err = DivisionCodeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for DivisionCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DivisionCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    #[test]
    fn standard_examples_parse() {
        for text in ["11010519491231002X", "440524188001010014"] {
            let id = IdNumber::parse(text).unwrap();
            assert_eq!(id.expose(), text);
        }
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.region_code(), "110105");
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert!(!id.is_male());
        assert!(IdNumber::parse("440524188001010014").unwrap().is_male());
    }

    #[test]
    fn parse_normalises_case_and_spaces() {
        let id = IdNumber::parse("  11010519491231002x \n").unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
    }

    #[test]
    fn fifteen_digit_numbers_convert() {
        // 110105491231002 is the 15-digit form of the standard's first example.
        let id = IdNumber::parse("110105491231002").unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
    }

    #[test]
    fn debug_and_display_are_masked() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.masked(), "110105********002X");
        assert_eq!(id.to_string(), "110105********002X");
        let debug = format!("{id:?}");
        assert!(!debug.contains("19491231"), "{debug}");
        assert!(debug.contains("110105********002X"));
    }

    #[test]
    fn id_errors() {
        use IdNumberError::*;
        let cases: &[(&str, IdNumberError)] = &[
            ("", WrongLength { found: 0 }),
            ("11010519491231002", WrongLength { found: 17 }),
            ("11010519491231002X1", WrongLength { found: 19 }),
            (
                "1101051949123100２X",
                BadCharacter {
                    position: 17,
                    found: '２',
                },
            ),
            (
                "11010519491231002Y",
                BadCharacter {
                    position: 18,
                    found: 'Y',
                },
            ),
            (
                "A1010519491231002X",
                BadCharacter {
                    position: 1,
                    found: 'A',
                },
            ),
            (
                "11010549123100A",
                BadCharacter {
                    position: 15,
                    found: 'A',
                },
            ),
            ("110105194902300020", ImpossibleDate),
            ("110105194913010020", ImpossibleDate),
            ("990105194912310020", UnknownRegion),
            ("00010519491231002X", UnknownRegion),
            (
                "110105194912310021",
                ChecksumMismatch {
                    expected: 'X',
                    found: '1',
                },
            ),
        ];
        for (text, expected) in cases {
            let err = IdNumber::parse(text).unwrap_err();
            assert_eq!(&err, expected, "{text}");
            // No message repeats the number itself.
            for message in [err.to_string(), err.message_zh()] {
                if text.len() >= 10 {
                    assert!(!message.contains(text), "{message}");
                }
            }
        }
    }

    #[test]
    fn id_error_codes_and_messages() {
        let err = IdNumber::parse("11010519491231002").unwrap_err();
        assert_eq!(err.code(), "id_number.wrong_length");
        assert_eq!(
            err.message_zh(),
            "身份证号码应为18位，当前为17位，请核对后重新输入"
        );
        let codes = [
            IdNumberError::WrongLength { found: 1 }.code(),
            IdNumberError::BadCharacter {
                position: 1,
                found: 'a',
            }
            .code(),
            IdNumberError::ImpossibleDate.code(),
            IdNumberError::UnknownRegion.code(),
            IdNumberError::ChecksumMismatch {
                expected: '1',
                found: '2',
            }
            .code(),
        ];
        assert_eq!(
            codes,
            [
                "id_number.wrong_length",
                "id_number.bad_character",
                "id_number.impossible_date",
                "id_number.unknown_region",
                "id_number.checksum_mismatch"
            ]
        );
    }

    #[test]
    fn parse_with_regions_requires_known_code() {
        let known = |code: &str| code == "330302";
        let id = IdNumber::from_parts("330302", date(1990, 1, 2), 123).unwrap();
        assert!(IdNumber::parse_with_regions(id.expose(), known).is_ok());
        assert_eq!(
            IdNumber::parse_with_regions("11010519491231002X", known),
            Err(IdNumberError::UnknownRegion)
        );
    }

    #[test]
    fn from_parts_builds_valid_numbers() {
        let id = IdNumber::from_parts("110105", date(1949, 12, 31), 2).unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
        assert_eq!(
            IdNumber::from_parts("110105", date(1949, 12, 31), 1000),
            Err(IdNumberError::WrongLength { found: 19 })
        );
        assert_eq!(
            IdNumber::from_parts("11010A", date(1949, 12, 31), 1),
            Err(IdNumberError::BadCharacter {
                position: 6,
                found: 'A'
            })
        );
    }

    #[test]
    fn credit_code_standard_example() {
        let code = CreditCode::parse("91350100M000100Y43").unwrap();
        assert_eq!(code.as_str(), "91350100M000100Y43");
        assert_eq!(code.registering_authority(), '9');
        assert_eq!(code.category(), '1');
        assert_eq!(code.division_code(), "350100");
        assert!(code.checksum_ok());
        assert_eq!(CreditCode::check_char("91350100M000100Y4"), '3');
        assert_eq!(
            CreditCode::parse(" 91350100m000100y43 ").unwrap().as_str(),
            "91350100M000100Y43"
        );
    }

    #[test]
    fn credit_code_errors() {
        use CreditCodeError::*;
        let cases: &[(&str, CreditCodeError)] = &[
            ("", WrongLength { found: 0 }),
            ("91350100M000100Y4", WrongLength { found: 17 }),
            (
                "91350100M000100I43",
                BadCharacter {
                    position: 16,
                    found: 'I',
                },
            ),
            (
                "91350100M0001O0Y43",
                BadCharacter {
                    position: 14,
                    found: 'O',
                },
            ),
            (
                "H1350100M000100Y43",
                BadCharacter {
                    position: 1,
                    found: 'H',
                },
            ),
            (
                "9135A100M000100Y43",
                BadCharacter {
                    position: 5,
                    found: 'A',
                },
            ),
            ("91990100M000100Y43", UnknownRegion),
            (
                "91350100M000100Y44",
                ChecksumMismatch {
                    expected: '3',
                    found: '4',
                    code: "91350100M000100Y44".to_owned(),
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(&CreditCode::parse(text).unwrap_err(), expected, "{text}");
        }
        assert_eq!(
            CreditCode::parse("").unwrap_err().code(),
            "credit_code.wrong_length"
        );
        assert!(CreditCode::parse("91350100M000100Y44")
            .unwrap_err()
            .message_zh()
            .contains("人工审核"));
    }

    #[test]
    fn checksum_mismatch_can_be_reviewed() {
        let (code, ok) = CreditCode::parse_unchecked_checksum("91350100M000100Y44").unwrap();
        assert!(!ok);
        assert!(!code.checksum_ok());
        let (_, ok) = CreditCode::parse_unchecked_checksum("91350100M000100Y43").unwrap();
        assert!(ok);
        assert!(CreditCode::parse_unchecked_checksum("91350100M000100Y4").is_err());
        // A reviewed code survives a round trip through serde.
        let json = serde_json::to_string(&code).unwrap();
        assert_eq!(json, "\"91350100M000100Y44\"");
        assert_eq!(serde_json::from_str::<CreditCode>(&json).unwrap(), code);
        assert!(serde_json::from_str::<CreditCode>("\"913501\"").is_err());
    }

    #[test]
    fn credit_code_from_parts() {
        let code = CreditCode::from_parts('9', '1', "350100", "M000100Y4").unwrap();
        assert_eq!(code.as_str(), "91350100M000100Y43");
        let code = CreditCode::from_parts('5', '3', "330302", "MJ1234567").unwrap();
        assert!(code.checksum_ok());
        assert_eq!(
            CreditCode::from_parts('5', '3', "330302", "MJ123456"),
            Err(CreditCodeError::WrongLength { found: 17 })
        );
    }

    #[test]
    fn division_codes() {
        for ok in ["33", "3303", "330302", "330302006", "330302006044"] {
            assert_eq!(DivisionCode::parse(ok).unwrap().as_str(), ok);
        }
        assert_eq!(
            DivisionCode::parse("33030"),
            Err(DivisionCodeError::WrongLength { found: 5 })
        );
        assert_eq!(
            DivisionCode::parse("3303a2"),
            Err(DivisionCodeError::BadCharacter {
                position: 5,
                found: 'a'
            })
        );
        assert_eq!(
            DivisionCode::parse("990302"),
            Err(DivisionCodeError::UnknownRegion)
        );
        let street = DivisionCode::parse("330302006").unwrap();
        let district = DivisionCode::parse("330302").unwrap();
        assert!(street.is_within(&district));
        assert!(!district.is_within(&street));
        let json = serde_json::to_string(&street).unwrap();
        assert_eq!(serde_json::from_str::<DivisionCode>(&json).unwrap(), street);
        assert!(serde_json::from_str::<DivisionCode>("\"12345\"").is_err());
    }

    /// A 17-digit body with a real date and a real province.
    fn valid_body() -> impl Strategy<Value = String> {
        (
            proptest::sample::select(PROVINCE_CODES.to_vec()),
            0u32..10_000,
            1900i16..2100,
            1i8..=12,
            1i8..=31,
            0u16..1000,
        )
            .prop_filter_map("real date", |(p, rest, y, m, d, seq)| {
                let birth = Date::new(y, m, d).ok()?;
                Some(format!(
                    "{p}{rest:04}{:04}{:02}{:02}{seq:03}",
                    birth.year(),
                    birth.month(),
                    birth.day()
                ))
            })
    }

    proptest! {
        #[test]
        fn appending_check_char_gives_a_valid_number(body in valid_body()) {
            let number = format!("{body}{}", IdNumber::check_char(&body));
            let id = IdNumber::parse(&number).unwrap();
            prop_assert_eq!(id.expose(), number.as_str());
        }

        #[test]
        fn changing_one_digit_fails(body in valid_body(), position in 0usize..18, bump in 1u8..10) {
            let number = format!("{body}{}", IdNumber::check_char(&body));
            let mut bytes = number.into_bytes();
            let old = bytes[position];
            bytes[position] = if old == b'X' {
                b'0' + bump
            } else {
                b'0' + (old - b'0' + bump) % 10
            };
            // Every single-digit change moves the weighted sum by a non-multiple of 11, so the
            // checksum (if nothing else) must catch it.
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(IdNumber::parse(&changed).is_err(), "{}", changed);
        }

        #[test]
        fn credit_code_check_char_round_trips(
            body in proptest::collection::vec(0usize..31, 9),
            division in 0u32..10_000,
            province in proptest::sample::select(PROVINCE_CODES.to_vec()),
        ) {
            let org: String = body.iter().map(|&i| CREDIT_ALPHABET.as_bytes()[i] as char).collect();
            let code = CreditCode::from_parts('5', '1', &format!("{province}{division:04}"), &org).unwrap();
            prop_assert!(CreditCode::parse(code.as_str()).is_ok());
        }
    }
}
