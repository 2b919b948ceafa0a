//! Display helpers for pages: numbers, money, labels. Integer arithmetic only.

use cishan_core::{Fen, Status};

/// `1234567` → `1,234,567`.
pub(crate) fn group_digits(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// `123456` fen → `¥1,234.56`.
pub(crate) fn money(fen: i64) -> String {
    Fen::new(fen).to_string()
}

/// How much of `goal` has been `raised`, in whole percent, rounded down and capped at 100.
/// 100 is shown only when the goal is reached; `None` when there is no goal.
pub(crate) fn progress_percent(raised: i64, goal: i64) -> Option<u8> {
    if goal <= 0 {
        return None;
    }
    let raised = i128::from(raised.max(0));
    let pct = (raised * 100 / i128::from(goal)).min(100);
    u8::try_from(pct).ok()
}

pub(crate) fn status_label(status: Status) -> &'static str {
    match status {
        Status::Met => "达标",
        Status::NotMet => "未达标",
        Status::NoData => "暂无数据",
    }
}

pub(crate) fn status_key(status: Status) -> &'static str {
    match status {
        Status::Met => "met",
        Status::NotMet => "not_met",
        Status::NoData => "no_data",
    }
}

/// The organization kinds the platform knows, in Chinese; unknown kinds are shown as stored.
pub(crate) fn org_kind_label(kind: &str) -> String {
    match kind {
        "foundation" => "基金会",
        "social_group" | "association" => "社会团体",
        "social_service" | "social_service_org" => "社会服务机构",
        "enterprise" | "company" => "企业",
        "government" => "机关事业单位",
        "community" => "社区组织",
        other => other,
    }
    .to_owned()
}

/// Project states in Chinese; unknown states are shown as stored.
pub(crate) fn project_state_label(state: &str) -> String {
    match state {
        "draft" | "planned" => "筹备中",
        "fundraising" | "open" => "募集中",
        "active" | "executing" | "running" => "执行中",
        "completed" | "closed" | "done" => "已结项",
        "suspended" | "paused" => "已暂停",
        other => other,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(1_234_567), "1,234,567");
        assert_eq!(group_digits(-1234), "-1,234");
        assert_eq!(group_digits(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn progress_is_full_only_when_reached() {
        assert_eq!(progress_percent(0, 100), Some(0));
        assert_eq!(progress_percent(50, 100), Some(50));
        assert_eq!(progress_percent(99_999, 100_000), Some(99));
        assert_eq!(progress_percent(100_000, 100_000), Some(100));
        assert_eq!(progress_percent(250_000, 100_000), Some(100));
        assert_eq!(progress_percent(i64::MAX, 3), Some(100));
        assert_eq!(progress_percent(10, 0), None);
        assert_eq!(progress_percent(-5, 100), Some(0));
    }

    #[test]
    fn money_uses_fen_display() {
        assert_eq!(money(123_456), "¥1,234.56");
    }
}
