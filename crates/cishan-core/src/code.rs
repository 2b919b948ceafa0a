//! Signed codes (一码通): short payloads that fit a QR code and can be checked offline with the
//! platform's public code key.
//!
//! A payload is the text `CS1.` followed by unpadded base64url of
//!
//! ```text
//! body      = version (1 byte, = 1)
//!             kind (1 byte: 1 participant, 2 activity, 3 certificate, 4 receipt)
//!             subject
//!             issued_at (4 bytes, big-endian Unix seconds)
//!             valid_seconds (4 bytes, big-endian; 0 = does not expire)
//!             nonce (8 bytes)
//! subject   = 0x01 len(prefix) prefix (ASCII) len(hex) hex-digits-as-bytes   for ids like `ptc_0a1b…`
//!           | 0x02 len utf8-bytes                                            for any other text
//! signature = Ed25519 over "cishan-code-v1\n" ‖ body (64 bytes)
//! payload   = "CS1." base64url(body ‖ signature)
//! ```
//!
//! A participant code with a `ptc_` id of 20 hex digits is 34 + 64 bytes, 135 characters: a
//! version 8 QR code at error correction level M.
//!
//! Pure: time (`now`, Unix seconds) and the nonce are passed in, and signing takes the key; no
//! clock, no randomness, no IO.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer};

pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// Every payload starts with this.
pub const PREFIX: &str = "CS1.";
/// The format's version byte.
const VERSION: u8 = 1;
/// What the signature covers before the body, so a code signature is never mistaken for a
/// signature over anything else the platform signs.
const DOMAIN: &[u8] = b"cishan-code-v1\n";
const SIGNATURE_BYTES: usize = 64;
/// Longest subject text (and longest prefix) encodable: its length is one byte.
pub const MAX_SUBJECT_BYTES: usize = 255;
/// Longest payload text accepted for decoding; anything longer is malformed at once.
pub const MAX_PAYLOAD_CHARS: usize =
    4 + (2 + 2 * MAX_SUBJECT_BYTES + 18 + SIGNATURE_BYTES) * 4 / 3 + 4;
/// How far a code's issue time may lie in the future of the verifier's clock (clocks of
/// phones and scanners drift a little).
pub const CLOCK_SKEW_SECONDS: i64 = 30;
/// How long a participant code stays valid: long enough to show it and scan it, short enough
/// that a screenshot is useless a minute or two later.
pub const PARTICIPANT_VALID_SECONDS: u32 = 90;

/// What a code stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// A person or organization (一码通): rotating, short-lived.
    Participant,
    /// A volunteer activity, scanned by volunteers to check in or out: long-lived.
    Activity,
    /// A volunteer service certificate: long-lived.
    Certificate,
    /// A donation receipt: long-lived.
    Receipt,
}

impl CodeKind {
    fn byte(self) -> u8 {
        match self {
            CodeKind::Participant => 1,
            CodeKind::Activity => 2,
            CodeKind::Certificate => 3,
            CodeKind::Receipt => 4,
        }
    }

    fn from_byte(b: u8) -> Option<CodeKind> {
        match b {
            1 => Some(CodeKind::Participant),
            2 => Some(CodeKind::Activity),
            3 => Some(CodeKind::Certificate),
            4 => Some(CodeKind::Receipt),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Participant => "participant",
            CodeKind::Activity => "activity",
            CodeKind::Certificate => "certificate",
            CodeKind::Receipt => "receipt",
        }
    }

    /// The Chinese name, for messages.
    pub fn name_zh(self) -> &'static str {
        match self {
            CodeKind::Participant => "个人码",
            CodeKind::Activity => "活动码",
            CodeKind::Certificate => "证书码",
            CodeKind::Receipt => "票据码",
        }
    }
}

/// What a code says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Claim {
    pub kind: CodeKind,
    /// The id or number of what the code stands for (`ptc_…`, `act_…`, a certificate number).
    pub subject: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Seconds from `issued_at` the code is valid for; 0 for codes that do not expire.
    pub valid_seconds: u32,
    pub nonce: u64,
}

impl Claim {
    /// Unix seconds from which the code is refused, or `None` when it does not expire.
    pub fn expires_at(&self) -> Option<i64> {
        (self.valid_seconds > 0).then(|| self.issued_at + i64::from(self.valid_seconds))
    }

    /// The nonce as 16 lowercase hex digits (how it is stored when a code is used up).
    pub fn nonce_hex(&self) -> String {
        format!("{:016x}", self.nonce)
    }
}

/// Why a payload is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("not a cishan code: {0}")]
    Malformed(&'static str),
    #[error("the signature does not match: the code was altered or not issued by this platform")]
    Forged,
    #[error("the code expired at {expired_at} (Unix seconds)")]
    Expired { expired_at: i64 },
    #[error("the code is not valid yet (issued at {issued_at}, Unix seconds)")]
    NotYetValid { issued_at: i64 },
    #[error("a {found:?} code was given where a {expected:?} code is needed")]
    WrongKind { expected: CodeKind, found: CodeKind },
    #[error("the subject cannot be encoded: {0}")]
    Unencodable(&'static str),
}

impl CodeError {
    /// A stable machine code, e.g. `code.expired`.
    pub fn code(&self) -> &'static str {
        match self {
            CodeError::Malformed(_) => "code.malformed",
            CodeError::Forged => "code.forged",
            CodeError::Expired { .. } => "code.expired",
            CodeError::NotYetValid { .. } => "code.not_yet_valid",
            CodeError::WrongKind { .. } => "code.wrong_kind",
            CodeError::Unencodable(_) => "code.unencodable",
        }
    }

    /// What a person at the scanner is told, in Chinese.
    pub fn message_zh(&self) -> String {
        match self {
            CodeError::Malformed(_) => {
                "无法识别这个码：它不是本平台的码，或者扫描不完整。请重新扫描。".to_owned()
            }
            CodeError::Forged => {
                "这个码的签名校验未通过：它被改动过，或不是本平台签发的。请勿受理。".to_owned()
            }
            CodeError::Expired { .. } => {
                "这个码已过期（个人码每隔一分多钟自动更新，截图无效）。请让对方刷新页面后出示新码。"
                    .to_owned()
            }
            CodeError::NotYetValid { .. } => {
                "这个码的签发时间晚于当前时间：请检查扫码设备的时钟，或让对方刷新后重新出示。"
                    .to_owned()
            }
            CodeError::WrongKind { expected, found } => format!(
                "这里需要{}，扫到的是{}。请扫描正确的码。",
                expected.name_zh(),
                found.name_zh()
            ),
            CodeError::Unencodable(_) => "这个编号无法编入码中。".to_owned(),
        }
    }
}

fn push_subject(out: &mut Vec<u8>, subject: &str) -> Result<(), CodeError> {
    if subject.is_empty() {
        return Err(CodeError::Unencodable("empty subject"));
    }
    // `prefix_` followed by an even number of lowercase hex digits: store the digits as bytes.
    if let Some((prefix, hex)) = subject.rsplit_once('_') {
        let compact = !prefix.is_empty()
            && prefix.len() <= MAX_SUBJECT_BYTES
            && prefix.is_ascii()
            && !hex.is_empty()
            && hex.len() % 2 == 0
            && hex.len() / 2 <= MAX_SUBJECT_BYTES
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if compact {
            out.push(1);
            push_short(out, prefix.as_bytes());
            let bytes: Vec<u8> = hex
                .as_bytes()
                .chunks(2)
                .map(|pair| (nibble(pair[0]) << 4) | nibble(pair[1]))
                .collect();
            push_short(out, &bytes);
            return Ok(());
        }
    }
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(CodeError::Unencodable("subject longer than 255 bytes"));
    }
    out.push(2);
    push_short(out, subject.as_bytes());
    Ok(())
}

fn nibble(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        _ => b - b'a' + 10,
    }
}

fn push_short(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(&bytes[..bytes.len().min(MAX_SUBJECT_BYTES)]);
}

/// The unsigned body of a claim.
fn body(claim: &Claim) -> Result<Vec<u8>, CodeError> {
    let issued_at = u32::try_from(claim.issued_at)
        .map_err(|_| CodeError::Unencodable("issue time outside 1970–2106"))?;
    let mut out = Vec::with_capacity(48);
    out.push(VERSION);
    out.push(claim.kind.byte());
    push_subject(&mut out, &claim.subject)?;
    out.extend_from_slice(&issued_at.to_be_bytes());
    out.extend_from_slice(&claim.valid_seconds.to_be_bytes());
    out.extend_from_slice(&claim.nonce.to_be_bytes());
    Ok(out)
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(DOMAIN.len() + body.len());
    message.extend_from_slice(DOMAIN);
    message.extend_from_slice(body);
    message
}

/// Signs `claim` and returns the payload text.
pub fn sign(claim: &Claim, key: &SigningKey) -> Result<String, CodeError> {
    let mut bytes = body(claim)?;
    let signature = key.sign(&signed_message(&bytes));
    bytes.extend_from_slice(&signature.to_bytes());
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// A cursor over the body that refuses reading past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodeError> {
        if self.bytes.len() < n {
            return Err(CodeError::Malformed("truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, CodeError> {
        Ok(self.take(1)?[0])
    }

    fn short(&mut self) -> Result<&'a [u8], CodeError> {
        let len = usize::from(self.byte()?);
        self.take(len)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodeError> {
        self.take(N)?
            .try_into()
            .map_err(|_| CodeError::Malformed("truncated"))
    }
}

fn parse_body(body: &[u8]) -> Result<Claim, CodeError> {
    let mut r = Reader { bytes: body };
    if r.byte()? != VERSION {
        return Err(CodeError::Malformed("unknown version"));
    }
    let kind = CodeKind::from_byte(r.byte()?).ok_or(CodeError::Malformed("unknown kind"))?;
    let subject = match r.byte()? {
        1 => {
            let prefix = r.short()?;
            let digits = r.short()?;
            if prefix.is_empty() || !prefix.is_ascii() || digits.is_empty() {
                return Err(CodeError::Malformed("bad subject"));
            }
            let prefix =
                std::str::from_utf8(prefix).map_err(|_| CodeError::Malformed("bad subject"))?;
            let mut subject = String::with_capacity(prefix.len() + 1 + digits.len() * 2);
            subject.push_str(prefix);
            subject.push('_');
            for b in digits {
                subject.push_str(&format!("{b:02x}"));
            }
            subject
        }
        2 => {
            let text = r.short()?;
            if text.is_empty() {
                return Err(CodeError::Malformed("bad subject"));
            }
            std::str::from_utf8(text)
                .map_err(|_| CodeError::Malformed("bad subject"))?
                .to_owned()
        }
        _ => return Err(CodeError::Malformed("bad subject")),
    };
    let issued_at = i64::from(u32::from_be_bytes(r.array()?));
    let valid_seconds = u32::from_be_bytes(r.array()?);
    let nonce = u64::from_be_bytes(r.array()?);
    if !r.bytes.is_empty() {
        return Err(CodeError::Malformed("trailing bytes"));
    }
    Ok(Claim {
        kind,
        subject,
        issued_at,
        valid_seconds,
        nonce,
    })
}

/// The payload inside a scanned text: the text itself, or a link that carries it (a phone
/// camera opens `https://…/certificates/N?code=CS1.…`, and a desk scanner types the same link).
/// Returns the text from `CS1.` up to the first character that cannot be in a payload; the text
/// unchanged (trimmed) when there is no `CS1.` in it, so the verifier reports it as malformed.
pub fn extract_payload(text: &str) -> &str {
    let text = text.trim();
    let Some(start) = text.find(PREFIX) else {
        return text;
    };
    let rest = &text[start..];
    let end = rest[PREFIX.len()..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .map_or(rest.len(), |i| i + PREFIX.len());
    &rest[..end]
}

/// Checks the signature and the time of any kind of code, at `now` (Unix seconds).
pub fn verify_any(payload: &str, key: &VerifyingKey, now: i64) -> Result<Claim, CodeError> {
    let payload = payload.trim();
    if payload.len() > MAX_PAYLOAD_CHARS {
        return Err(CodeError::Malformed("too long"));
    }
    let encoded = payload
        .strip_prefix(PREFIX)
        .ok_or(CodeError::Malformed("missing CS1. prefix"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| CodeError::Malformed("not base64url"))?;
    if bytes.len() <= SIGNATURE_BYTES {
        return Err(CodeError::Malformed("truncated"));
    }
    let (body, signature) = bytes.split_at(bytes.len() - SIGNATURE_BYTES);
    let signature: [u8; SIGNATURE_BYTES] = signature
        .try_into()
        .map_err(|_| CodeError::Malformed("truncated"))?;
    // The signature is checked before the body is interpreted: an altered body is "forged",
    // whatever it now says.
    key.verify_strict(&signed_message(body), &Signature::from_bytes(&signature))
        .map_err(|_| CodeError::Forged)?;
    let claim = parse_body(body)?;
    if claim.issued_at > now + CLOCK_SKEW_SECONDS {
        return Err(CodeError::NotYetValid {
            issued_at: claim.issued_at,
        });
    }
    if let Some(expired_at) = claim.expires_at() {
        if now >= expired_at {
            return Err(CodeError::Expired { expired_at });
        }
    }
    Ok(claim)
}

/// Checks a code of the `expected` kind at `now` (Unix seconds): the decoded claim, or why it
/// is refused (malformed, forged, expired, not yet valid, wrong kind).
pub fn verify(
    payload: &str,
    key: &VerifyingKey,
    now: i64,
    expected: CodeKind,
) -> Result<Claim, CodeError> {
    let claim = verify_any(payload, key, now)?;
    if claim.kind != expected {
        return Err(CodeError::WrongKind {
            expected,
            found: claim.kind,
        });
    }
    Ok(claim)
}

/// Reads a public key from standard base64 (as served at `/api/v1/codes/key`).
pub fn parse_verifying_key(base64_text: &str) -> Option<VerifyingKey> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_text.trim())
        .ok()?;
    let bytes: [u8; 32] = bytes.as_slice().try_into().ok()?;
    VerifyingKey::from_bytes(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: i64 = 1_709_258_400; // 2024-03-01T02:00:00Z

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    fn participant(subject: &str) -> Claim {
        Claim {
            kind: CodeKind::Participant,
            subject: subject.to_owned(),
            issued_at: NOW,
            valid_seconds: PARTICIPANT_VALID_SECONDS,
            nonce: 0x0123_4567_89ab_cdef,
        }
    }

    #[test]
    fn a_participant_code_is_short_and_round_trips() {
        let claim = participant("ptc_0a1b2c3d4e5f60718293");
        let payload = sign(&claim, &key()).unwrap();
        assert!(payload.starts_with("CS1."));
        assert_eq!(payload.len(), 135, "{payload}");
        let back = verify(
            &payload,
            &key().verifying_key(),
            NOW + 10,
            CodeKind::Participant,
        )
        .unwrap();
        assert_eq!(back, claim);
        assert_eq!(back.expires_at(), Some(NOW + 90));
        assert_eq!(back.nonce_hex(), "0123456789abcdef");
    }

    #[test]
    fn other_subjects_are_carried_as_text() {
        for subject in [
            "ZYZ-2024-000001",
            "2026-LC01-0000042",
            "act_ABC",
            "x_1",
            "志愿证书",
        ] {
            let claim = Claim {
                kind: CodeKind::Certificate,
                subject: subject.to_owned(),
                issued_at: NOW,
                valid_seconds: 0,
                nonce: 1,
            };
            let payload = sign(&claim, &key()).unwrap();
            let back = verify_any(&payload, &key().verifying_key(), NOW + 100_000_000).unwrap();
            assert_eq!(back, claim, "{subject}");
            assert_eq!(back.expires_at(), None);
        }
        let long = "a".repeat(256);
        assert!(matches!(
            sign(
                &Claim {
                    subject: long,
                    ..participant("x")
                },
                &key()
            ),
            Err(CodeError::Unencodable(_))
        ));
    }

    #[test]
    fn expiry_is_exclusive_and_the_future_is_refused() {
        let payload = sign(&participant("ptc_00ff"), &key()).unwrap();
        let pk = key().verifying_key();
        assert!(verify(&payload, &pk, NOW + 89, CodeKind::Participant).is_ok());
        assert_eq!(
            verify(&payload, &pk, NOW + 90, CodeKind::Participant),
            Err(CodeError::Expired {
                expired_at: NOW + 90
            })
        );
        assert!(verify(
            &payload,
            &pk,
            NOW - CLOCK_SKEW_SECONDS,
            CodeKind::Participant
        )
        .is_ok());
        assert_eq!(
            verify(
                &payload,
                &pk,
                NOW - CLOCK_SKEW_SECONDS - 1,
                CodeKind::Participant
            ),
            Err(CodeError::NotYetValid { issued_at: NOW })
        );
    }

    #[test]
    fn wrong_kind_forged_and_malformed_codes_are_told_apart() {
        let payload = sign(&participant("ptc_00ff"), &key()).unwrap();
        let pk = key().verifying_key();
        assert_eq!(
            verify(&payload, &pk, NOW, CodeKind::Activity),
            Err(CodeError::WrongKind {
                expected: CodeKind::Activity,
                found: CodeKind::Participant
            })
        );
        let stranger = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert_eq!(
            verify(&payload, &stranger, NOW, CodeKind::Participant),
            Err(CodeError::Forged)
        );
        for bad in ["", "CS1.", "CS2.AAAA", "CS1.!!!!", "hello", "CS1.AAAA"] {
            assert!(
                matches!(verify_any(bad, &pk, NOW), Err(CodeError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            verify_any(&"A".repeat(MAX_PAYLOAD_CHARS + 1), &pk, NOW),
            Err(CodeError::Malformed(_))
        ));
        // Whitespace a scanner adds (a trailing newline) is ignored.
        assert!(verify_any(&format!(" {payload}\r\n"), &pk, NOW).is_ok());
        for e in [
            CodeError::Forged,
            CodeError::Expired { expired_at: 0 },
            CodeError::Malformed("x"),
        ] {
            assert!(!e.message_zh().is_empty());
            assert!(e.code().starts_with("code."));
        }
    }

    #[test]
    fn payloads_are_found_in_links() {
        let payload = sign(&participant("ptc_00ff"), &key()).unwrap();
        let link = format!("https://example.org/certificates/ZYFW-2024-000001?code={payload}&x=1");
        assert_eq!(extract_payload(&link), payload);
        assert_eq!(extract_payload(&format!("{payload}\n")), payload);
        assert_eq!(extract_payload(" hello "), "hello");
    }

    #[test]
    fn public_keys_are_read_from_base64() {
        let pk = key().verifying_key();
        let text = base64::engine::general_purpose::STANDARD.encode(pk.as_bytes());
        assert_eq!(parse_verifying_key(&text), Some(pk));
        assert_eq!(parse_verifying_key("AAAA"), None);
    }

    proptest! {
        // Any single flipped bit anywhere in the signed bytes is refused: a forged (or, when the
        // prefix breaks, malformed) code never verifies.
        #[test]
        fn any_flipped_byte_is_refused(index in 0_usize..200, bit in 0_u8..8, nonce in any::<u64>()) {
            let claim = Claim { nonce, ..participant("ptc_0a1b2c3d4e5f60718293") };
            let payload = sign(&claim, &key()).unwrap();
            let encoded = payload.strip_prefix(PREFIX).unwrap();
            let mut bytes = URL_SAFE_NO_PAD.decode(encoded).unwrap();
            let i = index % bytes.len();
            bytes[i] ^= 1 << bit;
            let altered = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(&bytes));
            prop_assert!(verify_any(&altered, &key().verifying_key(), NOW).is_err());
        }

        // Any flipped character of the text is refused too (or decodes to the same bytes, which
        // base64url's unused low bits of the last character allow; then the claim is unchanged).
        #[test]
        fn any_altered_character_is_refused_or_harmless(index in 0_usize..200, c in "[A-Za-z0-9_.-]") {
            let claim = participant("ptc_0a1b2c3d4e5f60718293");
            let payload = sign(&claim, &key()).unwrap();
            let i = index % payload.len();
            let mut altered: Vec<char> = payload.chars().collect();
            altered[i] = c.chars().next().unwrap();
            let altered: String = altered.into_iter().collect();
            if let Ok(back) = verify_any(&altered, &key().verifying_key(), NOW) {
                prop_assert_eq!(back, claim);
            }
        }

        #[test]
        fn decoding_never_panics(text in "\\PC{0,200}") {
            let _ = verify_any(&text, &key().verifying_key(), NOW);
            let _ = verify_any(&format!("CS1.{text}"), &key().verifying_key(), NOW);
        }
    }
}
