//! Training AlexNet, the same for the native trainer and the page: the step (forward, loss,
//! backward, the optimizer's update), our SGD, the learning-rate schedules, the training images'
//! augmentation, the arithmetic's format, the running loss and accuracy, and the two ways the page
//! learns: teaching a new last layer and training the whole network live. What only a native
//! program does (folders, caches, checkpoints, the dashboard, peers and MPI) is the trainer's.

pub mod augment;
pub mod live;
mod meter;
mod precision;
pub mod readback;
mod schedule;
mod sgd;
mod step;
pub mod teach;

pub use meter::{hits, Means, Meter};
pub use precision::Compute;
pub use schedule::{Plateau, Schedule, ScheduleKind};
pub use sgd::{sgd, sgd_for, MomentumState, Sgd, SgdState};
pub use step::{draw_weights, Classifier, Stepper};
