//! The pure engine behind donation flows (一扫清): first-in first-out consumption of lots, exact
//! splitting by weights, and matching amounts. The app layer reads lots inside its writing
//! transaction, asks these functions what to take, and writes the result; the property tests at
//! the bottom drive the same functions through random histories and check that every fen is
//! accounted for.

/// Not enough money in the lots to take the amount asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("asked for {wanted} fen but only {available} fen are available")]
pub struct Shortfall {
    pub wanted: i64,
    pub available: i64,
}

/// How much to take from each lot, oldest first, to make up `amount`. `remaining` lists the
/// lots' balances in consumption order. The result has one entry per lot (zero for the lots not
/// touched) and sums to `amount` exactly.
pub fn take_fifo(remaining: &[i64], amount: i64) -> Result<Vec<i64>, Shortfall> {
    let available: i64 = remaining.iter().filter(|r| **r > 0).sum();
    if amount <= 0 || amount > available {
        return Err(Shortfall {
            wanted: amount,
            available,
        });
    }
    let mut left = amount;
    Ok(remaining
        .iter()
        .map(|r| {
            let take = left.min((*r).max(0));
            left -= take;
            take
        })
        .collect())
}

/// Why a weighted split is impossible.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    #[error("nothing to split among")]
    NoParts,
    #[error("weights must be positive")]
    WeightNotPositive,
    #[error("the amount must be positive")]
    AmountNotPositive,
    #[error("the total weight is too large")]
    Overflow,
}

/// Splits `amount` among parts in proportion to `weights` by the largest-remainder method: each
/// part gets the floor of its exact share, and the fen left over go one each to the parts with
/// the largest remainders (ties to the earlier part). Deterministic, and the parts always sum to
/// `amount`.
pub fn split_by_weights(amount: i64, weights: &[i64]) -> Result<Vec<i64>, SplitError> {
    if weights.is_empty() {
        return Err(SplitError::NoParts);
    }
    if amount <= 0 {
        return Err(SplitError::AmountNotPositive);
    }
    if weights.iter().any(|w| *w <= 0) {
        return Err(SplitError::WeightNotPositive);
    }
    let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
    if total > i128::from(i64::MAX) {
        return Err(SplitError::Overflow);
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut remainders = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let exact = i128::from(amount) * i128::from(*w);
        let floor = i64::try_from(exact / total).map_err(|_| SplitError::Overflow)?;
        parts.push(floor);
        remainders.push((exact % total, i));
    }
    let given: i64 = parts.iter().sum();
    let left = usize::try_from(amount - given).map_err(|_| SplitError::Overflow)?;
    // Largest remainder first; equal remainders keep the earlier part first.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.into_iter().take(left) {
        parts[i] += 1;
    }
    Ok(parts)
}

/// The terms of a matching pool (配捐) that decide one donation's match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchTerms {
    /// The match is `amount × ratio_num / ratio_den`, rounded down to the fen.
    pub ratio_num: i64,
    pub ratio_den: i64,
    pub cap_per_donation: i64,
    pub cap_per_donor: i64,
    pub cap_total: i64,
}

/// How much the pool gives to a donation of `amount` when this donor has already received
/// `donor_used` and the pool has paid out `pool_used`. Never more than any cap allows; zero
/// when the pool is exhausted.
pub fn match_amount(terms: &MatchTerms, amount: i64, donor_used: i64, pool_used: i64) -> i64 {
    if amount <= 0 || terms.ratio_den <= 0 || terms.ratio_num <= 0 {
        return 0;
    }
    let by_ratio = i128::from(amount) * i128::from(terms.ratio_num) / i128::from(terms.ratio_den);
    let by_ratio = i64::try_from(by_ratio).unwrap_or(i64::MAX);
    by_ratio
        .min(terms.cap_per_donation)
        .min(terms.cap_per_donor - donor_used)
        .min(terms.cap_total - pool_used)
        .max(0)
}

/// The match that should remain on a donation after part of it was refunded: the match computed
/// on the net amount, never more than was matched. The difference goes back to the pool.
pub fn match_after_refund(terms: &MatchTerms, matched: i64, net_amount: i64) -> i64 {
    if net_amount <= 0 {
        return 0;
    }
    let by_ratio =
        i128::from(net_amount) * i128::from(terms.ratio_num) / i128::from(terms.ratio_den);
    i64::try_from(by_ratio).unwrap_or(i64::MAX).min(matched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn fifo_takes_oldest_first_and_sums_exactly() {
        assert_eq!(take_fifo(&[100, 50, 70], 120), Ok(vec![100, 20, 0]));
        assert_eq!(take_fifo(&[0, 50], 50), Ok(vec![0, 50]));
        assert_eq!(
            take_fifo(&[10, 20], 31),
            Err(Shortfall {
                wanted: 31,
                available: 30
            })
        );
        assert!(take_fifo(&[10], 0).is_err());
    }

    #[test]
    fn split_uses_largest_remainders_with_ties_to_the_earlier_part() {
        assert_eq!(split_by_weights(100, &[1, 1, 1]), Ok(vec![34, 33, 33]));
        assert_eq!(split_by_weights(10, &[3, 3, 4]), Ok(vec![3, 3, 4]));
        assert_eq!(split_by_weights(1, &[1, 1]), Ok(vec![1, 0]));
        assert_eq!(split_by_weights(7, &[2, 5]), Ok(vec![2, 5]));
        // 1000 × (1/6, 2/6, 3/6) = 166.67, 333.33, 500: the one spare fen goes to the first.
        assert_eq!(split_by_weights(1000, &[1, 2, 3]), Ok(vec![167, 333, 500]));
        assert_eq!(split_by_weights(5, &[]), Err(SplitError::NoParts));
        assert_eq!(
            split_by_weights(5, &[1, 0]),
            Err(SplitError::WeightNotPositive)
        );
    }

    #[test]
    fn match_respects_every_cap() {
        let terms = MatchTerms {
            ratio_num: 1,
            ratio_den: 1,
            cap_per_donation: 5_000,
            cap_per_donor: 8_000,
            cap_total: 100_000,
        };
        assert_eq!(match_amount(&terms, 3_000, 0, 0), 3_000);
        assert_eq!(match_amount(&terms, 9_000, 0, 0), 5_000);
        assert_eq!(match_amount(&terms, 9_000, 5_000, 0), 3_000);
        assert_eq!(match_amount(&terms, 9_000, 0, 99_000), 1_000);
        assert_eq!(match_amount(&terms, 9_000, 0, 100_000), 0);
        let half = MatchTerms {
            ratio_num: 1,
            ratio_den: 2,
            ..terms
        };
        assert_eq!(match_amount(&half, 3, 0, 0), 1);
        assert_eq!(match_after_refund(&half, 1_000, 1_000), 500);
        assert_eq!(match_after_refund(&half, 1_000, 0), 0);
    }

    // ---- A model of the ledger, driven by the same functions the app uses. ----

    #[derive(Debug, Clone)]
    enum Op {
        Donate {
            amount: i64,
            restricted: Option<usize>,
        },
        Allocate {
            amount: i64,
            weights: Vec<(usize, i64)>,
        },
        Disburse {
            project: usize,
            amount: i64,
        },
        Refund {
            donation: usize,
            amount: i64,
        },
        Reverse {
            disbursement: usize,
        },
    }

    const PROJECTS: usize = 3;
    const FUND: usize = usize::MAX;

    /// A disbursement in the model: its project, what it took from each donation, reversed.
    type ModelDisbursement = (usize, Vec<(usize, i64)>, bool);

    #[derive(Debug, Default)]
    struct Model {
        amounts: Vec<i64>,
        home: Vec<usize>,
        refunded: Vec<i64>,
        /// (holder, donation) → remaining; holder FUND is the one fund. BTreeMap order is FIFO
        /// order within a holder because donations are numbered in arrival order.
        lots: BTreeMap<(usize, usize), i64>,
        /// disbursement → (project, [(donation, amount)]), reversed flag.
        disbursements: Vec<ModelDisbursement>,
        project_total_in: [i64; PROJECTS],
    }

    impl Model {
        fn holder_lots(&self, holder: usize) -> Vec<(usize, i64)> {
            self.lots
                .range((holder, 0)..=(holder, usize::MAX))
                .map(|((_, d), r)| (*d, *r))
                .collect()
        }

        fn take(&mut self, holder: usize, amount: i64) -> Option<Vec<(usize, i64)>> {
            let lots = self.holder_lots(holder);
            let remaining: Vec<i64> = lots.iter().map(|l| l.1).collect();
            let takes = take_fifo(&remaining, amount).ok()?;
            let mut taken = Vec::new();
            for ((d, _), t) in lots.into_iter().zip(takes) {
                if t > 0 {
                    *self.lots.get_mut(&(holder, d)).expect("lot") -= t;
                    taken.push((d, t));
                }
            }
            Some(taken)
        }

        fn apply(&mut self, op: &Op) {
            match op {
                Op::Donate { amount, restricted } => {
                    let d = self.amounts.len();
                    let holder = restricted.unwrap_or(FUND);
                    self.amounts.push(*amount);
                    self.home.push(holder);
                    self.refunded.push(0);
                    self.lots.insert((holder, d), *amount);
                }
                Op::Allocate { amount, weights } => {
                    let ws: Vec<i64> = weights.iter().map(|w| w.1).collect();
                    let Ok(parts) = split_by_weights(*amount, &ws) else {
                        return;
                    };
                    assert_eq!(parts.iter().sum::<i64>(), *amount);
                    let available: i64 = self.holder_lots(FUND).iter().map(|l| l.1).sum();
                    if *amount > available {
                        return;
                    }
                    for ((project, _), part) in weights.iter().zip(parts) {
                        if part == 0 {
                            continue;
                        }
                        let taken = self.take(FUND, part).expect("checked above");
                        for (d, t) in taken {
                            *self.lots.entry((*project, d)).or_insert(0) += t;
                        }
                        self.project_total_in[*project] += part;
                    }
                }
                Op::Disburse { project, amount } => {
                    if let Some(taken) = self.take(*project, *amount) {
                        self.disbursements.push((*project, taken, false));
                    }
                }
                Op::Refund { donation, amount } => {
                    let Some(d) = (*donation < self.amounts.len()).then_some(*donation) else {
                        return;
                    };
                    // Home lot first, then the projects it was allocated to, in holder order.
                    let mut holders: Vec<usize> = self
                        .lots
                        .keys()
                        .filter(|(h, dd)| *dd == d && *h != self.home[d])
                        .map(|(h, _)| *h)
                        .collect();
                    holders.insert(0, self.home[d]);
                    let remaining: Vec<i64> = holders
                        .iter()
                        .map(|h| self.lots.get(&(*h, d)).copied().unwrap_or(0))
                        .collect();
                    let Ok(takes) = take_fifo(&remaining, *amount) else {
                        return;
                    };
                    for (h, t) in holders.into_iter().zip(takes) {
                        if t > 0 {
                            *self.lots.get_mut(&(h, d)).expect("lot") -= t;
                        }
                    }
                    self.refunded[d] += amount;
                }
                Op::Reverse { disbursement } => {
                    let Some((project, taken, reversed)) =
                        self.disbursements.get_mut(*disbursement)
                    else {
                        return;
                    };
                    if *reversed {
                        return;
                    }
                    *reversed = true;
                    let project = *project;
                    for (d, t) in taken.clone() {
                        *self.lots.entry((project, d)).or_insert(0) += t;
                    }
                }
            }
        }

        fn check(&self) -> Result<(), TestCaseError> {
            let mut disbursed = vec![0_i64; self.amounts.len()];
            for (project, taken, reversed) in &self.disbursements {
                if *reversed {
                    continue;
                }
                for (d, t) in taken {
                    disbursed[*d] += t;
                    // Restricted money is only ever spent in its own project.
                    if self.home[*d] != FUND {
                        prop_assert_eq!(self.home[*d], *project);
                    }
                }
            }
            for (d, amount) in self.amounts.iter().enumerate() {
                let in_lots: i64 = self
                    .lots
                    .iter()
                    .filter(|((_, dd), _)| *dd == d)
                    .map(|(_, r)| *r)
                    .sum();
                prop_assert_eq!(
                    *amount,
                    self.refunded[d] + in_lots + disbursed[d],
                    "donation {} does not reconcile",
                    d
                );
                prop_assert!(self.refunded[d] <= *amount);
            }
            for ((holder, d), r) in &self.lots {
                prop_assert!(*r >= 0, "lot ({holder}, {d}) is negative");
                if self.home[*d] != FUND {
                    prop_assert!(*holder == self.home[*d] || *r == 0);
                }
            }
            Ok(())
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (1_i64..50_000, prop::option::of(0..PROJECTS))
                .prop_map(|(amount, restricted)| Op::Donate { amount, restricted }),
            2 => (1_i64..80_000, prop::collection::vec((0..PROJECTS, 1_i64..10), 1..4))
                .prop_map(|(amount, weights)| Op::Allocate { amount, weights }),
            2 => (0..PROJECTS, 1_i64..60_000)
                .prop_map(|(project, amount)| Op::Disburse { project, amount }),
            1 => (0_usize..20, 1_i64..30_000)
                .prop_map(|(donation, amount)| Op::Refund { donation, amount }),
            1 => (0_usize..10).prop_map(|disbursement| Op::Reverse { disbursement }),
        ]
    }

    proptest! {
        #[test]
        fn every_fen_is_accounted_for(ops in prop::collection::vec(op(), 1..80)) {
            let mut model = Model::default();
            for op in &ops {
                model.apply(op);
                model.check()?;
            }
            // Allocations only ever move money the fund had.
            let allocated: i64 = model.project_total_in.iter().sum();
            let fund_in: i64 = model
                .amounts
                .iter()
                .zip(&model.home)
                .filter(|(_, h)| **h == FUND)
                .map(|(a, _)| *a)
                .sum();
            prop_assert!(allocated <= fund_in);
        }

        #[test]
        fn splits_always_sum_and_stay_proportional(
            amount in 1_i64..10_000_000_000,
            weights in prop::collection::vec(1_i64..1_000_000, 1..12),
        ) {
            let parts = split_by_weights(amount, &weights).expect("valid");
            prop_assert_eq!(parts.iter().sum::<i64>(), amount);
            let total: i128 = weights.iter().map(|w| i128::from(*w)).sum();
            for (p, w) in parts.iter().zip(&weights) {
                // Each part is within one fen of its exact share.
                let exact_floor = i128::from(amount) * i128::from(*w) / total;
                prop_assert!(i128::from(*p) == exact_floor || i128::from(*p) == exact_floor + 1);
            }
            prop_assert_eq!(split_by_weights(amount, &weights).expect("valid"), parts);
        }

        #[test]
        fn fifo_never_takes_more_than_a_lot_holds(
            lots in prop::collection::vec(0_i64..10_000, 1..20),
            amount in 1_i64..100_000,
        ) {
            match take_fifo(&lots, amount) {
                Ok(takes) => {
                    prop_assert_eq!(takes.iter().sum::<i64>(), amount);
                    let mut still_open = true;
                    for (t, r) in takes.iter().zip(&lots) {
                        prop_assert!(*t >= 0 && t <= r);
                        // Oldest first: a lot is touched only if every older one was emptied.
                        if *t > 0 { prop_assert!(still_open); }
                        if t < r { still_open = false; }
                    }
                }
                Err(e) => prop_assert!(amount > lots.iter().sum::<i64>() && e.wanted == amount),
            }
        }

        #[test]
        fn matches_never_exceed_a_cap(
            amount in 1_i64..1_000_000,
            num in 1_i64..5, den in 1_i64..5,
            per_donation in 1_i64..500_000, per_donor in 1_i64..800_000, total in 1_i64..2_000_000,
            donor_used in 0_i64..800_000, pool_used in 0_i64..2_000_000,
        ) {
            let terms = MatchTerms { ratio_num: num, ratio_den: den, cap_per_donation: per_donation,
                cap_per_donor: per_donor, cap_total: total };
            let m = match_amount(&terms, amount, donor_used, pool_used);
            prop_assert!(m >= 0);
            prop_assert!(m <= per_donation);
            prop_assert!(m == 0 || donor_used + m <= per_donor);
            prop_assert!(m == 0 || pool_used + m <= total);
            prop_assert!(i128::from(m) * i128::from(den) <= i128::from(amount) * i128::from(num));
        }
    }
}
