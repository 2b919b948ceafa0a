//! The recompute scan: every act, evaluated under a rule book, compared with what it earns
//! now. Built for district scale (10M acts): the database concatenates each range of 250k acts
//! into one text (so sqlx decodes one row per range, not one per act); ranges are read a few at
//! a time and parsed on blocking threads into 48-byte rows; the rows are bucketed by participant
//! key, one bucket per core, and each bucket is sorted by `(participant, occurred_at, seq)` and
//! evaluated on its own thread. Nothing is written; [`crate::points`] settles the participants
//! the scan reports.

use std::collections::HashMap;
use std::sync::Arc;

use cishan_core::points::{evaluate, Act, ActKind, RuleBook};
use cishan_store::Store;

use crate::{AppError, Result};

/// How many acts one read covers.
const CHUNK: i64 = 250_000;
/// Reads in flight at once (each also parses its text on a blocking thread).
const READERS: usize = 3;

/// One act, compact: 48 bytes.
#[derive(Debug, Clone, Copy)]
struct Compact {
    pkey: i64,
    at_us: i64,
    seq: i64,
    quantity: i64,
    reversed: i64,
    day: i32,
    honour: i32,
    spendable: i32,
    kind: u8,
    category: u16,
}

/// A participant whose points the book changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParticipantDiff {
    pub pkey: i64,
    pub honour_before: i64,
    pub honour_delta: i64,
    pub spendable_before: i64,
    pub spendable_delta: i64,
    pub acts_changed: i64,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ScanResult {
    pub acts_scanned: i64,
    pub acts_changed: i64,
    pub participants: Vec<ParticipantDiff>,
}

fn bad(what: &str) -> AppError {
    AppError::internal(std::io::Error::other(format!("points scan: {what}")))
}

/// One read range, parsed; `category` indexes `categories` (0 = none, i = categories[i − 1]).
#[derive(Debug, Default)]
struct Parsed {
    acts: Vec<Compact>,
    categories: Vec<String>,
}

fn field<'a>(parts: &mut impl Iterator<Item = &'a str>) -> Result<i64> {
    parts
        .next()
        .and_then(|p| p.parse::<i64>().ok())
        .ok_or_else(|| bad("malformed act"))
}

/// Parses `seq,pkey,kind,quantity,reversed,at_us,day,honour,spendable,category;…`.
fn parse(text: &str) -> Result<Parsed> {
    let mut out = Parsed::default();
    let mut local: HashMap<&str, u16> = HashMap::new();
    for record in text.split(';') {
        let mut parts = record.splitn(10, ',');
        let seq = field(&mut parts)?;
        let pkey = field(&mut parts)?;
        let kind = field(&mut parts)?;
        let quantity = field(&mut parts)?;
        let reversed = field(&mut parts)?;
        let at_us = field(&mut parts)?;
        let day = field(&mut parts)?;
        let honour = field(&mut parts)?;
        let spendable = field(&mut parts)?;
        let cat = parts.next().unwrap_or("");
        let category = if cat.is_empty() {
            0
        } else if let Some(i) = local.get(cat) {
            *i
        } else {
            out.categories.push(cat.to_owned());
            let i = u16::try_from(out.categories.len()).map_err(|_| bad("too many categories"))?;
            local.insert(cat, i);
            i
        };
        out.acts.push(Compact {
            pkey,
            at_us,
            seq,
            quantity,
            reversed,
            day: i32::try_from(day).map_err(|_| bad("day"))?,
            honour: i32::try_from(honour).map_err(|_| bad("honour"))?,
            spendable: i32::try_from(spendable).map_err(|_| bad("spendable"))?,
            kind: u8::try_from(kind).map_err(|_| bad("kind"))?,
            category,
        });
    }
    Ok(out)
}

async fn read_range(store: Store, from: i64, to: i64) -> Result<Parsed> {
    let Some(text) = store.scan_points_acts_packed(from, to).await? else {
        return Ok(Parsed::default());
    };
    tokio::task::spawn_blocking(move || parse(&text))
        .await
        .map_err(|e| bad(&e.to_string()))?
}

/// Reads every act and evaluates it under `book`.
pub(crate) async fn scan(store: &Store, book: &RuleBook) -> Result<ScanResult> {
    let max = store.max_points_act_seq().await?;
    let mut reads = tokio::task::JoinSet::new();
    let mut next = 1_i64;
    let mut parsed = Vec::new();
    loop {
        while reads.len() < READERS && next <= max {
            reads.spawn(read_range(store.clone(), next, next + CHUNK));
            next += CHUNK;
        }
        match reads.join_next().await {
            Some(done) => parsed.push(done.map_err(|e| bad(&e.to_string()))??),
            None => break,
        }
    }
    let book = book.clone();
    tokio::task::spawn_blocking(move || evaluate_all(parsed, &book))
        .await
        .map_err(|e| bad(&e.to_string()))?
}

/// Puts the acts into one bucket per core by participant key, then sorts and evaluates each
/// bucket on its own thread.
fn evaluate_all(parsed: Vec<Parsed>, book: &RuleBook) -> Result<ScanResult> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(1);
    let mut names: Vec<Arc<str>> = vec![Arc::from("")];
    let mut global: HashMap<String, u16> = HashMap::new();
    let max_pkey = parsed
        .iter()
        .flat_map(|p| p.acts.iter().map(|a| a.pkey))
        .max()
        .unwrap_or(0);
    let total: usize = parsed.iter().map(|p| p.acts.len()).sum();
    let mut buckets: Vec<Vec<Compact>> = (0..threads)
        .map(|_| Vec::with_capacity(total / threads + 1))
        .collect();
    let width = i128::from(max_pkey) + 1;
    let t = i128::try_from(threads).unwrap_or(1);
    for chunk in parsed {
        let mut map = vec![0_u16];
        for c in chunk.categories {
            let id = match global.get(&c) {
                Some(id) => *id,
                None => {
                    names.push(Arc::from(c.as_str()));
                    let id =
                        u16::try_from(names.len() - 1).map_err(|_| bad("too many categories"))?;
                    global.insert(c, id);
                    id
                }
            };
            map.push(id);
        }
        for mut a in chunk.acts {
            a.category = map[usize::from(a.category)];
            let b = usize::try_from(i128::from(a.pkey.max(0)) * t / width).unwrap_or(0);
            buckets[b.min(threads - 1)].push(a);
        }
    }
    let results: Vec<Result<ScanResult>> = std::thread::scope(|s| {
        let handles: Vec<_> = buckets
            .iter_mut()
            .map(|bucket| {
                let names = &names;
                s.spawn(move || {
                    bucket.sort_unstable_by_key(|a| (a.pkey, a.at_us, a.seq));
                    evaluate_part(bucket, book, names)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(bad("thread panicked"))))
            .collect()
    });
    let mut out = ScanResult {
        acts_scanned: i64::try_from(total).unwrap_or(i64::MAX),
        ..ScanResult::default()
    };
    for r in results {
        let r = r?;
        out.acts_changed += r.acts_changed;
        out.participants.extend(r.participants);
    }
    Ok(out)
}

fn evaluate_part(part: &[Compact], book: &RuleBook, names: &[Arc<str>]) -> Result<ScanResult> {
    let mut out = ScanResult::default();
    let mut inputs: Vec<Act> = Vec::new();
    let mut start = 0;
    while start < part.len() {
        let pkey = part[start].pkey;
        let mut end = start;
        while end < part.len() && part[end].pkey == pkey {
            end += 1;
        }
        let group = &part[start..end];
        inputs.clear();
        for a in group {
            inputs.push(Act {
                seq: a.seq,
                at_us: a.at_us,
                day: i64::from(a.day),
                kind: ActKind::from_code(i64::from(a.kind)).ok_or_else(|| {
                    AppError::internal(std::io::Error::other(format!(
                        "act {} has a bad kind",
                        a.seq
                    )))
                })?,
                category: (a.category != 0).then(|| names[usize::from(a.category)].to_string()),
                quantity: a.quantity,
                reversed: a.reversed,
            });
        }
        let awards = evaluate(book, &inputs);
        let mut diff = ParticipantDiff {
            pkey,
            honour_before: 0,
            honour_delta: 0,
            spendable_before: 0,
            spendable_delta: 0,
            acts_changed: 0,
        };
        for (a, w) in group.iter().zip(&awards) {
            let (h, s) = (i64::from(a.honour), i64::from(a.spendable));
            diff.honour_before += h;
            diff.spendable_before += s;
            if w.honour != h || w.spendable != s {
                diff.acts_changed += 1;
                diff.honour_delta += w.honour - h;
                diff.spendable_delta += w.spendable - s;
            }
        }
        if diff.acts_changed > 0 {
            out.acts_changed += diff.acts_changed;
            out.participants.push(diff);
        }
        start = end;
    }
    Ok(out)
}
