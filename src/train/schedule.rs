//! Learning-rate schedules, stepped once per epoch. Burn's schedulers step per iteration and never
//! see validation results, so the paper's "divide by 10 when validation error stops improving" is
//! this small, checkpointable state machine.

use serde::{Deserialize, Serialize};

/// How the learning rate falls (a run's choice; [`Schedule`] is its state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// Divide by 10 when validation error stops improving for --patience epochs (at most 3
    /// times): the paper's.
    Plateau,
    /// Divide by 10 every --step-every epochs.
    Step,
    /// Half a cosine from --lr down to 0 over --epochs.
    Cosine,
}

/// Reduce-on-plateau: divide the rate by `factor` when validation error has not improved for
/// `patience` epochs, at most `max_drops` times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plateau {
    pub lr: f64,
    pub factor: f64,
    pub patience: usize,
    pub max_drops: usize,
    /// Smaller changes than this (absolute, in error fraction) do not count as improvement.
    pub min_delta: f64,
    pub best: Option<f64>,
    pub epochs_without_improvement: usize,
    pub drops: usize,
}

impl Plateau {
    pub fn new(lr: f64, patience: usize) -> Self {
        Self {
            lr,
            factor: 10.0,
            patience,
            max_drops: 3,
            min_delta: 1e-4,
            best: None,
            epochs_without_improvement: 0,
            drops: 0,
        }
    }

    /// Records one epoch's validation error; returns true when the rate was just divided.
    pub fn observe(&mut self, val_error: f64) -> bool {
        match self.best {
            Some(best) if val_error > best - self.min_delta => self.epochs_without_improvement += 1,
            _ => {
                self.best = Some(val_error);
                self.epochs_without_improvement = 0;
            }
        }
        if self.epochs_without_improvement >= self.patience && self.drops < self.max_drops {
            self.lr /= self.factor;
            self.drops += 1;
            self.epochs_without_improvement = 0;
            return true;
        }
        false
    }
}

/// The schedule a run uses, with its state (saved in checkpoints).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Schedule {
    Plateau(Plateau),
    /// Divide by `factor` every `every` epochs (torchvision's reference recipe: 10 every 30).
    Step {
        base_lr: f64,
        every: usize,
        factor: f64,
        lr: f64,
    },
    /// Half a cosine from `base_lr` down towards 0 over `epochs` epochs (Loshchilov and Hutter's
    /// SGDR without restarts): for runs of a known length.
    Cosine {
        base_lr: f64,
        epochs: usize,
        lr: f64,
    },
}

/// The cosine schedule's share of its base rate for 1-based `epoch` of `epochs`.
fn cosine_factor(epoch: usize, epochs: usize) -> f64 {
    let progress = epoch.saturating_sub(1) as f64 / epochs.max(1) as f64;
    0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
}

impl Schedule {
    /// A fresh schedule of `kind` from `lr`: `patience` for a plateau, `step_every` for steps,
    /// `epochs` for the cosine's length.
    pub fn new(kind: ScheduleKind, lr: f64, patience: usize, step_every: usize, epochs: usize) -> Self {
        match kind {
            ScheduleKind::Plateau => Schedule::Plateau(Plateau::new(lr, patience)),
            ScheduleKind::Step => Schedule::Step { base_lr: lr, every: step_every, factor: 10.0, lr },
            ScheduleKind::Cosine => Schedule::Cosine { base_lr: lr, epochs, lr },
        }
    }

    pub fn lr(&self) -> f64 {
        match self {
            Schedule::Plateau(p) => p.lr,
            Schedule::Step { lr, .. } | Schedule::Cosine { lr, .. } => *lr,
        }
    }

    /// Called after epoch `epoch` (1-based) with its validation error; returns true on a change.
    pub fn end_epoch(&mut self, epoch: usize, val_error: f64) -> bool {
        match self {
            Schedule::Plateau(p) => p.observe(val_error),
            Schedule::Step { base_lr, every, factor, lr } => {
                let next = *base_lr / factor.powi((epoch / (*every).max(1)) as i32);
                let changed = next != *lr;
                *lr = next;
                changed
            }
            Schedule::Cosine { base_lr, epochs, lr } => {
                *lr = *base_lr * cosine_factor(epoch + 1, *epochs);
                // A change every epoch: not worth a note each time.
                false
            }
        }
    }

    /// Sets the rate by hand after `epochs_done` epochs (the paper lowered it by hand); the
    /// schedule goes on from there.
    pub fn set_lr(&mut self, new_lr: f64, epochs_done: usize) {
        match self {
            Schedule::Plateau(p) => {
                p.lr = new_lr;
                p.epochs_without_improvement = 0;
            }
            Schedule::Step { base_lr, every, factor, lr } => {
                *base_lr = new_lr * factor.powi((epochs_done / (*every).max(1)) as i32);
                *lr = new_lr;
            }
            Schedule::Cosine { base_lr, epochs, lr } => {
                // Cannot rescale a rate the curve has already taken to 0: the rest stays at 0.
                *base_lr = new_lr / cosine_factor(epochs_done + 1, *epochs).max(1e-12);
                *lr = new_lr;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_drops_after_patience_and_at_most_three_times() {
        let mut p = Plateau::new(0.01, 2);
        assert!(!p.observe(0.9));
        assert!(!p.observe(0.8)); // improving
        assert!(!p.observe(0.8)); // 1 epoch without improvement
        assert!(p.observe(0.85)); // 2: drop
        assert!((p.lr - 0.001).abs() < 1e-12);
        assert!(!p.observe(0.7)); // new best resets the count
        for _ in 0..20 {
            p.observe(0.99);
        }
        assert_eq!(p.drops, 3);
        assert!((p.lr - 1e-5).abs() < 1e-15);
    }

    #[test]
    fn tiny_improvements_do_not_count() {
        let mut p = Plateau::new(0.1, 1);
        p.observe(0.5);
        assert!(p.observe(0.49999));
    }

    #[test]
    fn plateau_state_survives_a_checkpoint() {
        let mut s = Schedule::Plateau(Plateau::new(0.01, 3));
        s.end_epoch(1, 0.5);
        s.end_epoch(2, 0.6);
        let restored: Schedule = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(restored, s);
    }

    #[test]
    fn a_rate_set_by_hand_continues_the_schedule() {
        let mut s = Schedule::Step { base_lr: 0.01, every: 10, factor: 10.0, lr: 0.01 };
        s.set_lr(0.005, 4);
        assert!((s.lr() - 0.005).abs() < 1e-12);
        s.end_epoch(10, 0.0);
        assert!((s.lr() - 0.0005).abs() < 1e-12);
        let mut p = Schedule::Plateau(Plateau::new(0.01, 2));
        p.end_epoch(1, 0.5);
        p.end_epoch(2, 0.6);
        p.set_lr(0.001, 2);
        assert!(!p.end_epoch(3, 0.6), "the patience count restarts");
        assert!(p.end_epoch(4, 0.6));
        assert!((p.lr() - 0.0001).abs() < 1e-12);
    }

    #[test]
    fn cosine_falls_from_the_base_rate_to_near_zero() {
        let mut s = Schedule::Cosine { base_lr: 0.02, epochs: 4, lr: 0.02 };
        let lrs: Vec<f64> = (1..=4)
            .map(|e| {
                s.end_epoch(e, 0.0);
                s.lr()
            })
            .collect();
        // Epochs 2, 3, 4 and (past the end) 5: 0.02 * (1 + cos(pi * k / 4)) / 2.
        let want = [0.017071, 0.01, 0.002929, 0.0];
        assert!(lrs.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6), "{lrs:?}");
        let mut s = Schedule::Cosine { base_lr: 0.02, epochs: 4, lr: 0.02 };
        s.set_lr(0.005, 2);
        s.end_epoch(3, 0.0);
        assert!((s.lr() - 0.005 * 0.002929 / 0.01).abs() < 1e-6, "the curve goes on from the new rate");
    }

    #[test]
    fn step_divides_every_n_epochs() {
        let mut s = Schedule::Step { base_lr: 0.01, every: 30, factor: 10.0, lr: 0.01 };
        let lrs: Vec<f64> = (1..=61)
            .map(|e| {
                s.end_epoch(e, 0.0);
                s.lr()
            })
            .collect();
        assert!((lrs[28] - 0.01).abs() < 1e-12); // after epoch 29
        assert!((lrs[29] - 0.001).abs() < 1e-12); // after epoch 30
        assert!((lrs[60] - 0.0001).abs() < 1e-12);
    }
}
