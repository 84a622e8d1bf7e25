//! Quorum arithmetic of the modified Raft.
//!
//! Which voters count is `committee`'s business; this is the arithmetic.
//! - Election: a candidate wins when a majority of the voters agree and at
//!   least `min_quorum` do: `granted + abstained > voters / 2` and
//!   `granted + abstained >= min_quorum`. A voter that grants has the same
//!   log as the candidate, one that abstains is behind it: both bind their
//!   vote for the term (as in Raft, where both would grant), so two
//!   candidates can never both win a term.
//! - Commit and read confirmation: `max(voters / 2 + 1, min_quorum)` voters
//!   must hold the entry (or have acknowledged the round).

use crate::entry::Index;

/// Voters that must hold an entry before it commits.
pub(crate) fn commit_quorum(voters: usize, min_quorum: u32) -> usize {
    (voters / 2 + 1).max(min_quorum as usize)
}

/// Whether a candidate with these votes has won its election.
pub(crate) fn election_won(
    voters: usize,
    granted: usize,
    abstained: usize,
    min_quorum: u32,
) -> bool {
    let agreeing = granted + abstained;
    granted >= 1 && 2 * agreeing > voters && agreeing >= min_quorum as usize
}

/// The highest value that at least `quorum` of `values` reach, if any.
pub(crate) fn quorum_value(values: &mut [Index], quorum: usize) -> Option<Index> {
    if quorum == 0 || values.len() < quorum {
        return None;
    }
    values.sort_unstable_by(|a, b| b.cmp(a));
    Some(values[quorum - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_node_is_its_own_quorum() {
        assert_eq!(commit_quorum(1, 1), 1);
        assert!(election_won(1, 1, 0, 1));
    }

    #[test]
    fn abstainers_agree_with_a_candidate_ahead_of_them() {
        assert!(!election_won(3, 1, 0, 1));
        assert!(election_won(3, 1, 1, 1));
        assert!(!election_won(4, 1, 1, 1));
        assert!(election_won(5, 1, 2, 1));
        assert!(!election_won(5, 2, 0, 1));
    }

    #[test]
    fn min_quorum_is_a_floor_for_elections_and_commits() {
        assert!(!election_won(1, 1, 0, 2));
        assert!(election_won(3, 1, 2, 3));
        assert!(!election_won(3, 1, 1, 3));
        assert!(!election_won(2, 1, 0, 2));
        assert_eq!(commit_quorum(2, 3), 3);
        assert_eq!(commit_quorum(5, 1), 3);
    }

    #[test]
    fn quorum_value_is_the_kth_largest() {
        assert_eq!(quorum_value(&mut [5, 9, 7], 2), Some(7));
        assert_eq!(quorum_value(&mut [5], 2), None);
    }

    #[test]
    fn two_candidates_cannot_both_win_a_term() {
        for voters in 1..8usize {
            for g1 in 0..=voters {
                for a1 in 0..=voters - g1 {
                    for g2 in 0..=voters - g1 - a1 {
                        let a2 = voters - g1 - a1 - g2;
                        let both =
                            election_won(voters, g1, a1, 1) && election_won(voters, g2, a2, 1);
                        assert!(!both, "voters {voters}: {g1}/{a1} and {g2}/{a2}");
                    }
                }
            }
        }
    }
}
