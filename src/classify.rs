//! One photo's answer from the model's logits: its most probable classes, and whether it shows any
//! of them at all ([`crate::out_of_classes`]). `trainer predict` and the page both answer with it.

use serde::{Deserialize, Serialize};

use crate::labels::{top_k, Prediction};
use crate::weights::ModelInfo;

/// The answer for one photo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    /// The most probable classes, most likely first.
    pub top: Vec<Prediction>,
    /// Whether the photo shows none of the model's classes; `None` for a model without a
    /// threshold (one not calibrated).
    pub out_of_classes: Option<bool>,
}

impl Classification {
    /// The `k` most probable of `info`'s classes for one photo's `logits`.
    pub fn from_logits(logits: &[f32], info: &ModelInfo, k: usize) -> Self {
        Self {
            top: top_k(&softmax(logits), &info.labels, k),
            out_of_classes: info.out_of_classes.map(|o| o.flags(logits)),
        }
    }
}

/// Probabilities from logits (shifted by their maximum, so large logits do not overflow).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::out_of_classes::OutOfClasses;
    use crate::{AlexNetConfig, Label};

    fn info(out_of_classes: Option<OutOfClasses>) -> ModelInfo {
        let labels = ["cat", "dog"].map(|n| Label { name: n.into(), wnid: None }).to_vec();
        ModelInfo { out_of_classes, ..ModelInfo::new(AlexNetConfig::paper(2), labels) }
    }

    #[test]
    fn softmax_sums_to_one_without_overflow() {
        let p = softmax(&[1000.0, 1000.0 + 3f32.ln()]);
        assert!((p[0] - 0.25).abs() < 1e-4 && (p[1] - 0.75).abs() < 1e-4, "{p:?}");
    }

    #[test]
    fn answers_rank_and_flag_by_the_models_threshold() {
        let threshold = OutOfClasses { threshold: 2.0, in_class_flagged: 0.05, out_of_class_flagged: 0.8 };
        let weak = Classification::from_logits(&[0.5, 0.0], &info(Some(threshold)), 2);
        assert_eq!(weak.top.iter().map(|p| p.label.as_str()).collect::<Vec<_>>(), ["cat", "dog"]);
        assert_eq!(weak.out_of_classes, Some(true));
        let strong = Classification::from_logits(&[0.0, 5.0], &info(Some(threshold)), 1);
        assert_eq!((strong.top[0].label.as_str(), strong.out_of_classes), ("dog", Some(false)));
        assert_eq!(Classification::from_logits(&[0.5, 0.0], &info(None), 2).out_of_classes, None);
    }
}
