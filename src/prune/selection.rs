//! Choosing among the searches' candidates without trusting luck: the bootstrap estimate of the
//! choice's optimism.
//!
//! compress judges every candidate of every search on the same n validation rows and takes, per
//! search, the largest cut whose drop plus margin (margin.rs) is within the budget, then the
//! smallest model of all searches. The chosen candidate is the one whose drop looked smallest
//! among many close to the budget, so its drop on the validation rows is biased low: the gate,
//! on other rows, sees more.
//!
//! With o_i and c_i the original's and a candidate's verdict on row i (1 right, 0 wrong), a
//! candidate's drop on rows drawn with multiplicities w_i (Σw = n) is
//!
//!   drop_w = 100 · Σ_i w_i (o_i − c_i) / n.
//!
//! A bootstrap sample draws the n rows with replacement; on it every candidate's drop is
//! recomputed and the same rule chooses. That choice's optimism is its drop on all rows minus its
//! drop on the sample; ω, the mean over the samples that choose something, estimates how much the
//! choice on the real rows flatters the chosen candidate (Efron & Tibshirani, An Introduction to
//! the Bootstrap, 1993, ch. 17). compress then chooses with drop + margin + ω ≤ budget. ω is
//! never negative: a correction that loosened the budget would be luck again.
use rand::{RngExt, SeedableRng};

/// Bootstrap samples drawn for ω.
pub const SAMPLES: usize = 500;

/// One candidate as the rule sees it.
#[derive(Debug, Clone)]
pub struct Judged<'a> {
    pub params: usize,
    /// Its margin in points (margin.rs).
    pub margin: f64,
    /// It removes something (a candidate whose widths round back to the original's does not).
    pub cuts: bool,
    /// Its verdict on each validation row.
    pub right: &'a [bool],
}

/// Per search and candidate, the rows where its verdict differs from the original's: +1 where
/// only the original is right, −1 where only the candidate is. Only these rows move a drop.
type Differences = Vec<Vec<Vec<(usize, f64)>>>;

fn differences(original: &[bool], searches: &[Vec<Judged>]) -> Differences {
    let of = |c: &Judged| {
        original
            .iter()
            .zip(c.right)
            .enumerate()
            .filter(|(_, (o, r))| o != r)
            .map(|(i, (&o, _))| (i, if o { 1.0 } else { -1.0 }))
            .collect()
    };
    searches
        .iter()
        .map(|run| run.iter().map(of).collect())
        .collect()
}

fn weighted_drops(diffs: &Differences, rows: usize, weights: Option<&[u32]>) -> Vec<Vec<f64>> {
    let n = rows.max(1) as f64;
    let weight = |i: usize| weights.map_or(1.0, |w| f64::from(w[i]));
    let drop =
        |d: &Vec<(usize, f64)>| 100.0 * d.iter().map(|&(i, s)| s * weight(i)).sum::<f64>() / n;
    diffs
        .iter()
        .map(|run| run.iter().map(drop).collect())
        .collect()
}

/// The rule: per search (candidates sorted by ratio) the largest cut with drop + margin + extra
/// ≤ budget; of those, the fewest parameters, then the smallest drop. (search, candidate) or None.
pub fn choose(
    searches: &[Vec<Judged>],
    drops: &[Vec<f64>],
    extra: f64,
    budget: f64,
) -> Option<(usize, usize)> {
    searches
        .iter()
        .enumerate()
        .filter_map(|(s, run)| choose_in(run, &drops[s], extra, budget).map(|k| (s, k)))
        .min_by(|&(s, k), &(t, l)| {
            let (a, b) = (&searches[s][k], &searches[t][l]);
            a.params
                .cmp(&b.params)
                .then(drops[s][k].total_cmp(&drops[t][l]))
        })
}

/// The rule within one search: the last (largest-ratio) candidate within the budget.
pub fn choose_in(run: &[Judged], drops: &[f64], extra: f64, budget: f64) -> Option<usize> {
    (0..run.len())
        .rev()
        .find(|&k| run[k].cuts && drops[k] + run[k].margin + extra <= budget + 1e-9)
}

/// ω: the mean optimism of the rule's choice over `samples` bootstrap samples of the rows, drawn
/// from `seed` (the same inputs give the same ω). 0 when no sample chooses anything.
pub fn optimism(
    original: &[bool],
    searches: &[Vec<Judged>],
    budget: f64,
    samples: usize,
    seed: u64,
) -> f64 {
    let n = original.len();
    if n == 0 {
        return 0.0;
    }
    let diffs = differences(original, searches);
    let full = weighted_drops(&diffs, n, None);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut weights = vec![0u32; n];
    let (mut total, mut chose) = (0.0, 0usize);
    for _ in 0..samples {
        weights.fill(0);
        for _ in 0..n {
            weights[rng.random_range(0..n)] += 1;
        }
        let sample = weighted_drops(&diffs, n, Some(&weights));
        if let Some((s, k)) = choose(searches, &sample, 0.0, budget) {
            total += full[s][k] - sample[s][k];
            chose += 1;
        }
    }
    match chose {
        0 => 0.0,
        _ => (total / chose as f64).max(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each candidate's drop in points on rows weighted by `weights` (None: every row once).
    fn drops(
        original: &[bool],
        searches: &[Vec<Judged>],
        weights: Option<&[u32]>,
    ) -> Vec<Vec<f64>> {
        weighted_drops(&differences(original, searches), original.len(), weights)
    }

    fn judged(params: usize, margin: f64, right: &[bool]) -> Judged<'_> {
        Judged {
            params,
            margin,
            cuts: true,
            right,
        }
    }

    #[test]
    fn drops_count_only_rows_where_the_verdicts_differ() {
        let original = [true, true, false, false];
        let c = [true, false, true, false];
        let runs = vec![vec![judged(1, 0.0, &c)]];
        // One row lost, one gained: no drop; weighting the lost row twice: 25 points.
        assert_eq!(drops(&original, &runs, None)[0][0], 0.0);
        assert_eq!(drops(&original, &runs, Some(&[0, 2, 1, 1]))[0][0], 25.0);
    }

    #[test]
    fn the_rule_takes_the_largest_cut_per_search_and_the_smallest_model_overall() {
        let r = [true];
        let runs = vec![
            vec![
                judged(90, 0.1, &r),
                judged(80, 0.1, &r),
                judged(70, 0.1, &r),
            ],
            vec![judged(85, 0.1, &r), judged(75, 0.1, &r)],
        ];
        let drops = vec![vec![0.2, 0.5, 2.0], vec![0.1, 0.8]];
        assert_eq!(choose_in(&runs[0], &drops[0], 0.0, 1.0), Some(1));
        assert_eq!(choose(&runs, &drops, 0.0, 1.0), Some((1, 1)));
        // A correction of 0.2 points leaves the second search only its first candidate.
        assert_eq!(choose(&runs, &drops, 0.2, 1.0), Some((0, 1)));
        assert_eq!(choose(&runs, &drops, 1.0, 1.0), None);
    }

    #[test]
    fn candidates_that_agree_with_the_original_everywhere_have_no_optimism() {
        let original: Vec<bool> = (0..200).map(|i| i % 3 != 0).collect();
        let runs = vec![vec![judged(10, 0.0, &original), judged(5, 0.0, &original)]];
        assert_eq!(optimism(&original, &runs, 0.0, 50, 1), 0.0);
    }

    /// Twenty candidates, each wrong on its own random 5% of the rows where the original is
    /// right: every one truly loses 5 points × (share of rows the original gets right). The rule
    /// takes the luckiest; ω must recover most of the luck that an independent large sample
    /// shows, and the corrected drop must not be below the truth by more than noise.
    #[test]
    fn omega_recovers_the_luck_of_choosing_the_best_of_many() {
        let n = 2000;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let original: Vec<bool> = (0..n).map(|_| rng.random_range(0..10) < 9).collect();
        let rights: Vec<Vec<bool>> = (0..20)
            .map(|_| {
                original
                    .iter()
                    .map(|&o| o && rng.random_range(0..100) >= 5)
                    .collect()
            })
            .collect();
        // One search per candidate, all the same size: the rule takes the smallest drop.
        let runs: Vec<Vec<Judged>> = rights.iter().map(|r| vec![judged(1, 0.0, r)]).collect();
        let full = drops(&original, &runs, None);
        let (s, _) = choose(&runs, &full, 0.0, 100.0).unwrap();
        let seen = full[s][0];
        let truth = 100.0 * 0.9 * 0.05;
        let omega = optimism(&original, &runs, 100.0, 300, 3);
        assert!(
            seen < truth,
            "the chosen one looks lucky: {seen} vs {truth}"
        );
        assert!(
            omega > 0.5 * (truth - seen),
            "ω {omega}, luck {}",
            truth - seen
        );
        assert!(
            seen + omega < truth + 1.0,
            "ω {omega} overcorrects: {seen} + ω vs {truth}"
        );
    }
}
