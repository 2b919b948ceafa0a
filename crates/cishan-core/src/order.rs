//! Service orders (点单): the state machine every order follows, whoever moves it and by
//! whichever path (page, API, import).
//!
//! ```text
//! created ──dispatch──▶ dispatched ──accept──▶ accepted ──start──▶ in_service ──complete──▶ completed ──review──▶ reviewed
//!    ▲                     │  │                   │
//!    └────reject/expire────┘  └───────reject──────┘      cancel: from created, dispatched, accepted, in_service
//! ```
//!
//! A rejection (by the provider) or an expiry (the provider did not accept before the accept
//! deadline) returns the order to `created`, to be dispatched to the next candidate. Pure: the
//! caller checks who may act; this module only says which moves exist.

use std::fmt;
use std::str::FromStr;

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OrderState {
    /// Made, waiting to be dispatched (待派单); also after a rejection or an expiry.
    Created,
    /// Sent to one provider, waiting for them to accept (已派单).
    Dispatched,
    /// The provider took it (已接单).
    Accepted,
    /// The provider is serving (服务中).
    InService,
    /// Served, waiting for the person served to rate it (已完成).
    Completed,
    /// Rated (已评价). Final.
    Reviewed,
    /// Cancelled before completion (已取消). Final.
    Cancelled,
}

/// Every state, in the order of the diagram.
pub const ALL_STATES: [OrderState; 7] = [
    OrderState::Created,
    OrderState::Dispatched,
    OrderState::Accepted,
    OrderState::InService,
    OrderState::Completed,
    OrderState::Reviewed,
    OrderState::Cancelled,
];

impl OrderState {
    /// The stored and served name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Created => "created",
            OrderState::Dispatched => "dispatched",
            OrderState::Accepted => "accepted",
            OrderState::InService => "in_service",
            OrderState::Completed => "completed",
            OrderState::Reviewed => "reviewed",
            OrderState::Cancelled => "cancelled",
        }
    }

    /// The Chinese name shown to people.
    pub fn name_zh(self) -> &'static str {
        match self {
            OrderState::Created => "待派单",
            OrderState::Dispatched => "已派单待接单",
            OrderState::Accepted => "已接单",
            OrderState::InService => "服务中",
            OrderState::Completed => "已完成待评价",
            OrderState::Reviewed => "已评价",
            OrderState::Cancelled => "已取消",
        }
    }

    /// True while a provider holds the order (it counts towards their load).
    pub fn holds_provider(self) -> bool {
        matches!(
            self,
            OrderState::Dispatched | OrderState::Accepted | OrderState::InService
        )
    }

    /// True when nothing can happen to the order any more.
    pub fn is_final(self) -> bool {
        matches!(self, OrderState::Reviewed | OrderState::Cancelled)
    }
}

impl fmt::Display for OrderState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored state name that is not one of [`ALL_STATES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown order state `{0}`")]
pub struct UnknownState(pub String);

impl FromStr for OrderState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<OrderState, UnknownState> {
        ALL_STATES
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// Something done to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderAction {
    /// Staff or the platform sends it to a provider.
    Dispatch,
    /// The provider takes it.
    Accept,
    /// The provider declines it; it goes back to be dispatched to the next candidate.
    Reject,
    /// The accept deadline passed; the platform takes it back (as a rejection).
    Expire,
    /// The provider starts serving.
    Start,
    /// The provider finishes.
    Complete,
    /// The person served (or staff on their behalf) rates it.
    Review,
    /// The requester or staff calls it off, before completion.
    Cancel,
}

/// Every action.
pub const ALL_ACTIONS: [OrderAction; 8] = [
    OrderAction::Dispatch,
    OrderAction::Accept,
    OrderAction::Reject,
    OrderAction::Expire,
    OrderAction::Start,
    OrderAction::Complete,
    OrderAction::Review,
    OrderAction::Cancel,
];

impl OrderAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderAction::Dispatch => "dispatch",
            OrderAction::Accept => "accept",
            OrderAction::Reject => "reject",
            OrderAction::Expire => "expire",
            OrderAction::Start => "start",
            OrderAction::Complete => "complete",
            OrderAction::Review => "review",
            OrderAction::Cancel => "cancel",
        }
    }

    /// The Chinese verb shown to people.
    pub fn name_zh(self) -> &'static str {
        match self {
            OrderAction::Dispatch => "派单",
            OrderAction::Accept => "接单",
            OrderAction::Reject => "拒单",
            OrderAction::Expire => "超时改派",
            OrderAction::Start => "开始服务",
            OrderAction::Complete => "完成服务",
            OrderAction::Review => "评价",
            OrderAction::Cancel => "取消",
        }
    }
}

/// A move the state machine does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {} an order that is {}", action.as_str(), from.as_str())]
pub struct IllegalTransition {
    pub from: OrderState,
    pub action: OrderAction,
}

impl IllegalTransition {
    /// What to tell the person, in Chinese: the current state and why the action is refused.
    pub fn message_zh(&self) -> String {
        let why = match (self.action, self.from) {
            (_, OrderState::Cancelled) => "订单已取消，不能再操作".to_owned(),
            (_, OrderState::Reviewed) => "订单已评价，流程已结束".to_owned(),
            (OrderAction::Review, _) => "只有已完成的订单才能评价".to_owned(),
            (OrderAction::Cancel, _) => "服务已完成的订单不能取消".to_owned(),
            (OrderAction::Dispatch, _) => "只有待派单的订单才能派单".to_owned(),
            (OrderAction::Accept | OrderAction::Reject | OrderAction::Expire, _) => {
                "只有已派单（待接单）的订单才能接单、拒单或超时改派".to_owned()
            }
            (OrderAction::Start, _) => "只有已接单的订单才能开始服务".to_owned(),
            (OrderAction::Complete, _) => "只有服务中的订单才能完成".to_owned(),
        };
        format!(
            "订单当前状态为“{}”，不能{}：{}。请刷新后查看订单的最新状态。",
            self.from.name_zh(),
            self.action.name_zh(),
            why
        )
    }
}

/// The state after `action` in `from`, or why there is none.
pub fn next_state(from: OrderState, action: OrderAction) -> Result<OrderState, IllegalTransition> {
    use OrderAction as A;
    use OrderState as S;
    let to = match (from, action) {
        (S::Created, A::Dispatch) => S::Dispatched,
        (S::Dispatched, A::Accept) => S::Accepted,
        (S::Dispatched, A::Reject | A::Expire) => S::Created,
        (S::Accepted, A::Reject) => S::Created,
        (S::Accepted, A::Start) => S::InService,
        (S::InService, A::Complete) => S::Completed,
        (S::Completed, A::Review) => S::Reviewed,
        (S::Created | S::Dispatched | S::Accepted | S::InService, A::Cancel) => S::Cancelled,
        _ => return Err(IllegalTransition { from, action }),
    };
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole table, written out: every (state, action) pair and what it gives.
    #[test]
    fn the_transition_table_is_exactly_the_diagram() {
        use OrderAction as A;
        use OrderState as S;
        let legal = [
            (S::Created, A::Dispatch, S::Dispatched),
            (S::Created, A::Cancel, S::Cancelled),
            (S::Dispatched, A::Accept, S::Accepted),
            (S::Dispatched, A::Reject, S::Created),
            (S::Dispatched, A::Expire, S::Created),
            (S::Dispatched, A::Cancel, S::Cancelled),
            (S::Accepted, A::Start, S::InService),
            (S::Accepted, A::Reject, S::Created),
            (S::Accepted, A::Cancel, S::Cancelled),
            (S::InService, A::Complete, S::Completed),
            (S::InService, A::Cancel, S::Cancelled),
            (S::Completed, A::Review, S::Reviewed),
        ];
        for from in ALL_STATES {
            for action in ALL_ACTIONS {
                let expected = legal
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                assert_eq!(
                    next_state(from, action).ok(),
                    expected,
                    "{from} {}",
                    action.as_str()
                );
            }
        }
    }

    #[test]
    fn final_states_allow_nothing() {
        for from in ALL_STATES.into_iter().filter(|s| s.is_final()) {
            for action in ALL_ACTIONS {
                assert!(next_state(from, action).is_err());
            }
        }
    }

    #[test]
    fn refusals_name_the_current_state_in_chinese() {
        let e = next_state(OrderState::Completed, OrderAction::Cancel).unwrap_err();
        let m = e.message_zh();
        assert!(m.contains("已完成待评价"), "{m}");
        assert!(m.contains("不能取消"), "{m}");
    }

    #[test]
    fn names_round_trip() {
        for s in ALL_STATES {
            assert_eq!(s.as_str().parse::<OrderState>(), Ok(s));
        }
        assert!("open".parse::<OrderState>().is_err());
    }
}
