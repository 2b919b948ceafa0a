//! Masking personal data for public pages: donor walls, recipient lists, receipts shown to
//! others. Masking is by character, not byte, so Chinese names mask correctly.

/// Shown instead of a name when a donor asks to stay anonymous.
pub const ANONYMOUS_ZH: &str = "匿名";

/// Masks a person's name so it is recognisable to the person but not to strangers: the first
/// and (for three or more characters) last character stay, every other character becomes `*`.
/// `王测` → `王*`, `王小测` → `王*测`, `欧阳小明` → `欧**明`. A one-character name becomes `*`.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.as_slice() {
        [] => String::new(),
        [_] => "*".to_owned(),
        [first, _] => format!("{first}*"),
        [first, middle @ .., last] => {
            let mut masked = String::with_capacity(name.len());
            masked.push(*first);
            masked.extend(middle.iter().map(|_| '*'));
            masked.push(*last);
            masked
        }
    }
}

/// Shortest phone number that is partly shown; shorter ones would reveal too much of
/// themselves, so they are masked entirely.
const PHONE_MIN_SHOWN: usize = 11;

/// Masks a phone number as `138****5678`: the first 3 and last 4 characters stay. Numbers
/// shorter than a mobile number (11) are masked entirely, since keeping 7 characters of a short
/// number would give most of it away.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.trim().chars().collect();
    if chars.len() < PHONE_MIN_SHOWN {
        return "*".repeat(chars.len());
    }
    let (head, rest) = chars.split_at(3);
    let (middle, tail) = rest.split_at(rest.len() - 4);
    head.iter()
        .copied()
        .chain(middle.iter().map(|_| '*'))
        .chain(tail.iter().copied())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases = [
            ("", ""),
            ("王", "*"),
            ("王测", "王*"),
            ("王小测", "王*测"),
            ("欧阳小明", "欧**明"),
            (" 王小测 ", "王*测"),
            ("Li Lei", "L****i"),
        ];
        for (name, masked) in cases {
            assert_eq!(mask_name(name), masked, "{name}");
        }
    }

    #[test]
    fn phones() {
        let cases = [
            ("13812345678", "138****5678"),
            ("+8613812345678", "+86*******5678"),
            ("12345", "*****"),
            ("0577888888", "**********"),
            ("", ""),
        ];
        for (phone, masked) in cases {
            assert_eq!(mask_phone(phone), masked, "{phone}");
        }
    }
}
