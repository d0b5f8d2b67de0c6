//! Scores of probabilities against labels: the area under the ROC curve, average precision
//! (the area under the precision-recall curve) and the Brier score.

/// Indices of `scores`, highest first (ties kept in index order).
fn ranked(scores: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

/// The probability that a random positive scores above a random negative (ties count half);
/// 0.5 when either class is missing.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    // Mann-Whitney U over ascending ranks, ties given their mean rank.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| labels[order[k]]).count() as f64 * mean_rank;
        i = j + 1;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Precision averaged over the positives, each at the threshold that first admits it; 0 when
/// there is no positive.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> f64 {
    let positives = labels.iter().filter(|&&l| l).count();
    if positives == 0 {
        return 0.0;
    }
    let (mut hits, mut sum) = (0usize, 0.0);
    for (seen, &i) in ranked(scores).iter().enumerate() {
        if labels[i] {
            hits += 1;
            sum += hits as f64 / (seen + 1) as f64;
        }
    }
    sum / positives as f64
}

/// Mean squared difference between probability and outcome.
pub fn brier(probabilities: &[f64], labels: &[bool]) -> f64 {
    if probabilities.is_empty() {
        return 0.0;
    }
    probabilities.iter().zip(labels).map(|(p, &l)| (p - f64::from(u8::from(l))).powi(2)).sum::<f64>() / probabilities.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_match_hand_computed_values() {
        let scores = [0.9, 0.8, 0.7, 0.6, 0.5];
        let labels = [true, false, true, false, false];
        // Positives at ranks 1 and 3: precision 1/1 and 2/3.
        assert!((average_precision(&scores, &labels) - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        // Of the six positive-negative pairs, the positives win five.
        assert!((roc_auc(&scores, &labels) - 5.0 / 6.0).abs() < 1e-12);
        assert_eq!(roc_auc(&[0.5, 0.5], &[true, false]), 0.5);
        assert!((brier(&[1.0, 0.0, 0.5], &[true, true, false]) - (0.0 + 1.0 + 0.25) / 3.0).abs() < 1e-12);
    }
}
