//! A pipeline's input cut into parts at the places the sample took items from: each part is
//! still to run (a producer with its consumer) or done (the consumer's result), and between
//! two parts sits the reducer that joins the left one to what follows it, as rayon's
//! `Consumer::split_at` made it.
//!
//! The parts are joined from the left (`((p₀ ⊕ p₁) ⊕ p₂) …`), where rayon's own splits would
//! nest them from the right (`p₀ ⊕ (p₁ ⊕ (p₂ …))`): rayon's reducers are associative (they
//! join two neighbouring pieces whichever way rayon happened to split), and joining from the
//! left lets a run fold the parts it finished into one result as it goes, so that what it holds
//! stays bounded by the parts in flight.

use rayon::iter::plumbing::{Consumer, Folder, Producer, Reducer};
use std::collections::{BTreeMap, VecDeque};

/// One part of the input, `len` items from `start`.
pub(super) enum Part<P: Producer, C: Consumer<P::Item>> {
    /// Still to run.
    Todo { producer: P, consumer: C },
    /// Run: the consumer's result for these items.
    Done(C::Result),
    /// Running now (its producer and consumer were taken out to run).
    Running,
}

/// A part with its place, and the reducer that joins it to the parts after it (none for the
/// last part).
pub(super) struct Placed<P: Producer, C: Consumer<P::Item>> {
    pub(super) part: Part<P, C>,
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) join: Option<C::Reducer>,
}

/// The parts of one input, in input order.
pub(super) struct Line<P: Producer, C: Consumer<P::Item>> {
    /// By their first item (a sample spread over the input cuts it into a thousand parts or
    /// more; each cut is a lookup and an insertion, never a shift of the parts after it).
    parts: BTreeMap<usize, Placed<P, C>>,
    /// Items in parts still to run.
    left: usize,
}

impl<P: Producer, C: Consumer<P::Item>> Line<P, C> {
    /// The whole input of `len` items, still to run.
    pub(super) fn new(producer: P, consumer: C, len: usize) -> Self {
        let whole = Placed {
            part: Part::Todo { producer, consumer },
            start: 0,
            len,
            join: None,
        };
        Line {
            parts: BTreeMap::from([(0, whole)]),
            left: len,
        }
    }

    /// Items still to run.
    pub(super) fn left(&self) -> usize {
        self.left
    }

    /// Whether the consumer wants no more items (a `find_any` that found, an `Err` collected):
    /// the consumers of one pipeline share that flag, so any part still to run tells.
    pub(super) fn full(&self) -> bool {
        self.parts.values().any(|p| match &p.part {
            Part::Todo { consumer, .. } => consumer.full(),
            Part::Done(_) | Part::Running => false,
        })
    }

    /// The first item still to run, if any.
    pub(super) fn first_left(&self) -> Option<usize> {
        self.parts
            .values()
            .find(|p| matches!(p.part, Part::Todo { .. }) && p.len > 0)
            .map(|p| p.start)
    }

    /// Items from `index` to the end of the part that holds it, when that part is still to
    /// run; 0 otherwise (a part already run, or past the end).
    pub(super) fn room(&self, index: usize) -> usize {
        match self.parts.range(..=index).next_back() {
            Some((_, p)) if matches!(p.part, Part::Todo { .. }) => {
                (p.start + p.len).saturating_sub(index)
            }
            _ => 0,
        }
    }

    /// Runs the items `index..index + k` (at most [`room`](Line::room) of them) with `run`,
    /// which gets their producer and consumer, cut off the part that holds them, and keeps the
    /// result in their place. Returns the items run: 0 where `index` lies in a part already
    /// run, or past the end.
    pub(super) fn run_at(
        &mut self,
        index: usize,
        k: usize,
        run: impl FnOnce(P, C) -> C::Result,
    ) -> usize {
        let k = k.min(self.room(index));
        if k == 0 {
            return 0;
        }
        let Some((&start, _)) = self.parts.range(..=index).next_back() else {
            return 0;
        };
        if index > start {
            self.split(start, index);
        }
        if self.parts.get(&index).is_some_and(|p| p.len > k) {
            self.split(index, index + k);
        }
        let Some(placed) = self.parts.get_mut(&index) else {
            return 0;
        };
        let Part::Todo { producer, consumer } = std::mem::replace(&mut placed.part, Part::Running)
        else {
            unreachable!("the part was checked to be still to run");
        };
        // A panic in `run` unwinds through the line, which is dropped whole.
        placed.part = Part::Done(run(producer, consumer));
        self.left -= k;
        k
    }

    /// Cuts the part that starts at `start` (one still to run) before item `index`, inside it.
    fn split(&mut self, start: usize, index: usize) {
        let Some(Placed {
            part: Part::Todo { producer, consumer },
            len,
            join,
            ..
        }) = self.parts.remove(&start)
        else {
            unreachable!("only parts still to run are cut");
        };
        let k = index - start;
        let (lp, rp) = producer.split_at(k);
        let (lc, rc, reducer) = consumer.split_at(k);
        let left = Placed {
            part: Part::Todo {
                producer: lp,
                consumer: lc,
            },
            start,
            len: k,
            join: Some(reducer),
        };
        let right = Placed {
            part: Part::Todo {
                producer: rp,
                consumer: rc,
            },
            start: index,
            len: len - k,
            join,
        };
        self.parts.insert(start, left);
        self.parts.insert(index, right);
    }

    /// The parts, front first, for a run that takes them in order.
    pub(super) fn into_parts(self) -> VecDeque<Placed<P, C>> {
        self.parts.into_values().collect()
    }
}

/// One sequential fold of `p` into `c` (what rayon does with a piece it does not split).
pub(super) fn fold<P: Producer, C: Consumer<P::Item>>(p: P, c: C) -> C::Result {
    if c.full() {
        return c.into_folder().complete();
    }
    p.fold_with(c.into_folder()).complete()
}

/// Results joined from the left: the result so far and the reducer that joins it to the next.
pub(super) struct Joined<R, J> {
    acc: Option<(R, Option<J>)>,
}

impl<R, J: Reducer<R>> Joined<R, J> {
    pub(super) fn new() -> Self {
        Joined { acc: None }
    }

    /// Joins `result` (of the next part in order), followed by the reducer `join`.
    pub(super) fn push(&mut self, result: R, join: Option<J>) {
        let acc = match self.acc.take() {
            None => result,
            Some((left, Some(reducer))) => reducer.reduce(left, result),
            // Only the last part has no reducer after it; nothing follows it.
            // Only the last part has no reducer after it, and nothing follows it.
            Some((_, None)) => {
                unreachable!("a part was joined after the last one");
            }
        };
        self.acc = Some((acc, join));
    }

    /// The whole result. A line has one part at least, so something was joined.
    pub(super) fn finish(self) -> R {
        match self.acc {
            Some((r, _)) => r,
            None => unreachable!("a line has one part at least"),
        }
    }
}
