//! A producer that splits no finer than a given length: what keeps rayon's adaptive splitting
//! at or above the planned chunk size.

use rayon::iter::plumbing::{Folder, Producer};

/// `base`, reporting a minimum split length of at least `min` items.
pub(super) struct MinLen<P> {
    base: P,
    min: usize,
}

impl<P> MinLen<P> {
    pub(super) fn new(base: P, min: usize) -> Self {
        MinLen { base, min }
    }
}

impl<P: Producer> Producer for MinLen<P> {
    type Item = P::Item;
    type IntoIter = P::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        self.base.into_iter()
    }

    fn min_len(&self) -> usize {
        self.base.min_len().max(self.min)
    }

    fn max_len(&self) -> usize {
        self.base.max_len()
    }

    fn split_at(self, index: usize) -> (Self, Self) {
        let (left, right) = self.base.split_at(index);
        (MinLen::new(left, self.min), MinLen::new(right, self.min))
    }

    fn fold_with<F: Folder<Self::Item>>(self, folder: F) -> F {
        self.base.fold_with(folder)
    }
}
