//! The order Twilio signs parameters in: integer sort keys, sorted by rank when there are
//! few, and the runs of names that tie on their keys keyed again on their next bytes.

use core::cmp::Ordering;

use smallvec::SmallVec;

use super::Param;

/// The low bits of a sort key that hold the index among `count` parameters: as few as the
/// count needs (8 for up to 256 parameters, leaving 7 bytes of the name).
pub(super) fn index_mask(count: usize) -> u64 {
    let index_bits = u64::BITS - (count.max(2) as u64 - 1).leading_zeros();
    u64::MAX >> (u64::BITS - index_bits)
}

/// Orders the runs of `order` whose names tie on the bytes their keys keep. A run of plain
/// names is keyed again on the next bytes of the names, as many rounds as they keep tying (34
/// `MediaContentType*` names: 3 rounds), so that names are compared as words, not by
/// `memcmp` through a comparator (an MMS's two runs of 34 cost ~30,000 instructions that way).
/// A run with a name to decode, or whose names are the same in every byte looked at, is
/// ordered by `full`. The keys' index bits are kept; their other bits end up holding the last
/// round's bytes, which stay equal for equal names.
pub(super) fn order_ties(
    order: &mut [u64],
    params: &[Param<'_>],
    index_mask: u64,
    full: impl Fn(&u64, &u64) -> Ordering,
) {
    // The bytes of a name a key holds whole: the index bits cut into the low ones.
    let kept = 8 - (index_mask.count_ones() as usize).div_ceil(8);
    let tie = |a: &u64, b: &u64| (a ^ b) & !index_mask == 0;
    // Runs to order, and how many bytes of their names are known to be equal.
    let mut runs: SmallVec<[(usize, usize, usize); 8]> = SmallVec::new();
    let push_runs = |order: &[u64], base: usize, offset: usize, runs: &mut SmallVec<_>| {
        let mut start = 0;
        for end in 1..=order.len() {
            if end < order.len() && tie(&order[end], &order[start]) {
                continue;
            }
            if end - start > 1 {
                runs.push((base + start, base + end, offset));
            }
            start = end;
        }
    };
    push_runs(order, 0, kept, &mut runs);
    while let Some((start, end, offset)) = runs.pop() {
        let run = &mut order[start..end];
        let name = |key: u64| params[(key & index_mask) as usize].name;
        let plain = run.iter().all(|&key| !name(key).encoded);
        let longest = run.iter().map(|&key| name(key).len).max().unwrap_or(0);
        if !plain || offset >= longest {
            run.sort_unstable_by(&full);
            continue;
        }
        for key in run.iter_mut() {
            *key = name(*key).word(offset) & !index_mask | *key & index_mask;
        }
        if run.len() <= 32 {
            rank_sort(run);
        } else {
            run.sort_unstable();
        }
        push_runs(run, start, offset + kept, &mut runs);
    }
}

/// Sorts up to 32 keys in place, smallest first, without a data-dependent branch: each key's
/// place is the number of keys below it. The keys must be distinct (each holds its index).
///
/// n² comparisons, but no mispredictions: parameters in another wire order on every call
/// (300 SMS in rotation) made an insertion sort's inner loop mispredict about once a key;
/// same run, rotation valid/floor 3.11 against 2.85 with this.
pub(super) fn rank_sort(keys: &mut [u64]) {
    let mut sorted = [0u64; 32];
    for &key in keys.iter() {
        let rank: usize = keys.iter().map(|&other| usize::from(other < key)).sum();
        sorted[rank] = key;
    }
    keys.copy_from_slice(&sorted[..keys.len()]);
}
