//! Quorum arithmetic of the modified Raft.
//!
//! Voters are this node and its bonded peers that are not observers.
//! - Election: a candidate wins with `granted >= (voters - abstained) / 2 + 1`
//!   and `granted + abstained >= min_quorum`. Abstainers bind their vote for
//!   the term, so two candidates can never both win a term.
//! - Commit and read confirmation: `max(voters / 2 + 1, min_quorum)` voters
//!   must hold the entry (or have acknowledged the round). Abstention does
//!   not shrink this denominator (the module docs of `raft` say why).

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
    let denominator = voters.saturating_sub(abstained);
    granted > denominator / 2 && granted + abstained >= min_quorum as usize
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
    fn abstainers_leave_the_election_denominator() {
        assert!(!election_won(3, 1, 0, 1));
        assert!(election_won(3, 1, 2, 1));
        assert!(!election_won(5, 2, 1, 1));
        assert!(election_won(5, 2, 2, 1));
    }

    #[test]
    fn min_quorum_is_a_floor_for_elections_and_commits() {
        assert!(!election_won(1, 1, 0, 2));
        assert!(election_won(3, 1, 2, 3));
        assert!(!election_won(3, 1, 1, 3));
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
