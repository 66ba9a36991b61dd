//! "None of my classes": whether a photo shows any of the model's classes, judged from the
//! model's own logits.
//!
//! The score is the logits' log-sum-exp, the negative of the free energy of Liu et al. (2020,
//! "Energy-based Out-of-distribution Detection"): it grows with the evidence for any class, where
//! the top probability only says how that evidence divides among the classes. A photo scoring
//! below the model's threshold is flagged. The threshold is chosen on data (`trainer calibrate`:
//! the score below which a chosen share of in-class validation photos fall) and travels in the
//! weights file's metadata ([`crate::ModelInfo`]).

use serde::{Deserialize, Serialize};

/// A model's out-of-class threshold and what it flagged when it was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OutOfClasses {
    /// Photos whose [`score`] is below this are flagged.
    pub threshold: f32,
    /// Share of the in-class photos (the validation split) flagged at this threshold.
    pub in_class_flagged: f64,
    /// Share of the out-of-class photos flagged at this threshold.
    pub out_of_class_flagged: f64,
}

/// The evidence in a photo's logits for any of the classes: `ln(sum(exp(logits)))`.
pub fn score(logits: &[f32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return max;
    }
    max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln()
}

impl OutOfClasses {
    /// Whether a photo with these logits shows none of the classes. NaN logits (a broken model)
    /// are flagged.
    pub fn flags(&self, logits: &[f32]) -> bool {
        let s = score(logits);
        s.is_nan() || s < self.threshold
    }

    /// The threshold that flags `in_class_share` of the in-class photos (by their scores), and
    /// the share of the out-of-class photos it flags.
    pub fn choose(in_class: &[f32], out_of_class: &[f32], in_class_share: f64) -> Result<Self, String> {
        if in_class.is_empty() || out_of_class.is_empty() {
            return Err("need scores of both in-class and out-of-class photos".into());
        }
        if !(0.0..1.0).contains(&in_class_share) {
            return Err(format!("the in-class share to flag must be in [0, 1), not {in_class_share}"));
        }
        if let Some(bad) = in_class.iter().chain(out_of_class).find(|s| !s.is_finite()) {
            return Err(format!("a photo's score is {bad}: the model's outputs are not finite"));
        }
        let mut sorted = in_class.to_vec();
        sorted.sort_by(f32::total_cmp);
        // Flagged means strictly below: the threshold is the first score not to be flagged.
        let threshold = sorted[(in_class_share * sorted.len() as f64).floor() as usize];
        let share =
            |scores: &[f32]| scores.iter().filter(|&&s| s < threshold).count() as f64 / scores.len() as f64;
        Ok(Self { threshold, in_class_flagged: share(in_class), out_of_class_flagged: share(out_of_class) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_score_is_a_stable_log_sum_exp() {
        assert!((score(&[0.0, 0.0]) - 2f32.ln()).abs() < 1e-6);
        // Large logits do not overflow: 1000 + ln 2.
        assert!((score(&[1000.0, 1000.0]) - (1000.0 + 2f32.ln())).abs() < 1e-3);
        assert!(score(&[f32::NAN, 1.0]).is_nan());
    }

    #[test]
    fn the_threshold_flags_the_chosen_share_of_in_class_photos() {
        let in_class: Vec<f32> = (0..100).map(|i| i as f32).collect();
        let out_of_class = [-5.0, 2.0, 4.5, 50.0];
        let chosen = OutOfClasses::choose(&in_class, &out_of_class, 0.05).unwrap();
        assert_eq!(chosen.threshold, 5.0);
        assert_eq!(chosen.in_class_flagged, 0.05);
        assert_eq!(chosen.out_of_class_flagged, 0.75);
        assert!(chosen.flags(&[4.0, -30.0]) && !chosen.flags(&[6.0, -30.0]));
        assert!(chosen.flags(&[f32::NAN]));
    }

    #[test]
    fn bad_scores_or_shares_are_errors() {
        assert!(OutOfClasses::choose(&[1.0, f32::NAN], &[0.0], 0.05).unwrap_err().contains("not finite"));
        assert!(OutOfClasses::choose(&[1.0], &[0.0], 1.0).is_err());
        assert!(OutOfClasses::choose(&[], &[0.0], 0.05).is_err());
    }
}
