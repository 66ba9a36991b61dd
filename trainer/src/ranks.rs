//! Data parallelism across processes and machines: `mpirun -np K trainer train ...` (cargo feature
//! `mpi`, through OpenMPI or another MPI and the `mpi` crate). Every process ("rank") holds a
//! replica of the model on its own device and steps on its share of every batch; the gradients
//! are summed through MPI's all-reduce, so every replica takes the same SGD step. Rank 0 starts
//! the run (fresh weights, or the checkpoint with `--resume`) and sends it to the others; it alone
//! writes the run folder and validates; the others receive its figures, so every rank takes the
//! same plateau decision. The step itself is `crate::parallel`'s, with [`Ranks`] as its averaging.
//!
//! Gradients are paired in module-visit order, never by parameter id (ids are drawn per process).
//! A rank that fails aborts the whole job ([`Ranks::abort`]); one that dies is noticed by
//! `mpirun`, which stops the others: no rank waits forever for a dead one.
//!
//! Without the feature, [`Ranks::join`] refuses to run as one of several processes that `mpirun`
//! started: each would train a model of its own into the same `--out`.

use alexnet::AlexNet;
use anyhow::{Context, Result};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};

use crate::parallel::{share, Averaging};

/// This process's place in an MPI job.
pub struct Ranks {
    rank: usize,
    size: usize,
    /// The rank among the job's processes on this machine (picks this process's GPU).
    local_rank: usize,
    #[cfg(feature = "mpi")]
    world: mpi::topology::SimpleCommunicator,
    // Dropped last: finalises MPI.
    #[cfg(feature = "mpi")]
    _universe: mpi::environment::Universe,
}

/// The number of processes of the MPI job this one was started in (by `mpirun`/`mpiexec`), from
/// the variables OpenMPI, MPICH and PMIx launchers set; `None` outside one.
fn launched_size() -> Option<usize> {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
}

impl Ranks {
    /// Joins the MPI job this process belongs to: `None` when it was not started by `mpirun`
    /// (or as its only process), so a plain run never touches MPI.
    pub fn join() -> Result<Option<Self>> {
        let Some(size) = launched_size().filter(|&n| n > 1) else { return Ok(None) };
        Self::init(size)
    }

    #[cfg(not(feature = "mpi"))]
    fn init(size: usize) -> Result<Option<Self>> {
        anyhow::bail!(
            "started by mpirun as one of {size} processes, but this trainer was built without MPI: \
             each process would train a model of its own into the same --out. Rebuild with \
             `cargo build --release -p trainer --features mpi`, or run it without mpirun"
        )
    }

    #[cfg(feature = "mpi")]
    fn init(size: usize) -> Result<Option<Self>> {
        use mpi::topology::Communicator;
        // Only the main thread calls MPI; the kernels' and loaders' threads never do.
        let (universe, _) = mpi::initialize_with_threading(mpi::Threading::Funneled)
            .ok_or_else(|| anyhow::anyhow!("MPI was already initialised in this process"))?;
        let world = universe.world();
        let (rank, world_size) = (world.rank() as usize, world.size() as usize);
        if world_size != size {
            anyhow::bail!("the launcher announced {size} processes but MPI reports {world_size}");
        }
        let local_rank = ["OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMIX_LOCAL_RANK"]
            .iter()
            .find_map(|name| std::env::var(name).ok()?.parse().ok())
            .unwrap_or(rank);
        Ok(Some(Self { rank, size, local_rank, world, _universe: universe }))
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn size(&self) -> usize {
        self.size
    }

    pub fn local_rank(&self) -> usize {
        self.local_rank
    }

    /// Whether this rank writes the run folder and prints progress (rank 0).
    pub fn is_writer(&self) -> bool {
        self.rank == 0
    }

    /// Ends every process of the job after `message`: a rank that cannot go on must not leave
    /// the others waiting for it.
    pub fn abort(&self, message: &str) -> ! {
        eprintln!("error on rank {} of {}: {message}", self.rank, self.size);
        #[cfg(feature = "mpi")]
        {
            use mpi::topology::Communicator;
            self.world.abort(1)
        }
        #[cfg(not(feature = "mpi"))]
        std::process::exit(1)
    }

    /// Rank 0's `bytes`, on every rank (the others' `bytes` are ignored).
    pub fn broadcast(&self, bytes: Vec<u8>) -> Vec<u8> {
        #[cfg(feature = "mpi")]
        {
            use mpi::collective::Root;
            use mpi::topology::Communicator;
            let root = self.world.process_at_rank(0);
            let mut len = [bytes.len() as u64];
            root.broadcast_into(&mut len[..]);
            let mut bytes = if self.is_writer() { bytes } else { vec![0; len[0] as usize] };
            // MPI counts in C ints: large payloads go in pieces.
            for piece in bytes.chunks_mut(1 << 30) {
                root.broadcast_into(piece);
            }
            bytes
        }
        #[cfg(not(feature = "mpi"))]
        bytes
    }

    /// The element-wise sum of every rank's `values`.
    pub fn sum<T: Summable>(&self, values: &[T]) -> Vec<T> {
        #[cfg(feature = "mpi")]
        {
            use mpi::collective::{CommunicatorCollectives, SystemOperation};
            let mut sums = values.to_vec();
            for (sent, summed) in values.chunks(1 << 28).zip(sums.chunks_mut(1 << 28)) {
                self.world.all_reduce_into(sent, summed, SystemOperation::sum());
            }
            sums
        }
        #[cfg(not(feature = "mpi"))]
        values.to_vec()
    }
}

/// The element types summed across ranks.
#[cfg(feature = "mpi")]
pub trait Summable: mpi::datatype::Equivalence + Copy {}
#[cfg(not(feature = "mpi"))]
pub trait Summable: Copy {}
impl Summable for f32 {}
impl Summable for f64 {}

/// Takes each parameter's gradient out of `grads` (zeros where there is none), flattened in
/// module-visit order: the order every rank agrees on.
struct Flatten<'a, B: AutodiffBackend> {
    grads: Option<&'a mut GradientsParams>,
    scale: f32,
    out: Vec<f32>,
    _backend: std::marker::PhantomData<B>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Flatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let grad = self.grads.as_deref_mut().and_then(|g| g.remove::<B::InnerBackend, D>(param.id));
        match grad {
            Some(grad) => {
                let values = grad.into_data().convert::<f32>();
                let values = values.as_slice::<f32>().expect("f32 after convert");
                self.out.extend(values.iter().map(|v| v * self.scale));
            }
            None => self.out.resize(self.out.len() + param.lazy_shape().num_elements(), 0.0),
        }
    }
}

/// The reverse of [`Flatten`]: each parameter's share of `values`, divided by `divisor`, as its
/// gradient.
struct Unflatten<'a, B: AutodiffBackend> {
    values: &'a [f32],
    divisor: f32,
    grads: GradientsParams,
    device: &'a B::Device,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Unflatten<'_, B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let shape = param.lazy_shape();
        let (mine, rest) = self.values.split_at(shape.num_elements());
        self.values = rest;
        let mean: Vec<f32> = mine.iter().map(|v| v / self.divisor).collect();
        let grad = Tensor::<B::InnerBackend, D>::from_data(TensorData::new(mean, shape), self.device);
        self.grads.register::<B::InnerBackend, D>(param.id, grad);
    }
}

/// The mean gradient over every rank's images: each rank's mean gradient `grads` over its
/// `images` (`None` for a rank whose share of the batch was empty) is weighted by its image count,
/// so the result is the gradient of the mean loss over the whole batch, as on one device. `None`
/// when no rank had an image (every rank then skips the step).
pub fn average_gradients<B: AutodiffBackend, M: Module<B>>(
    ranks: &Ranks,
    model: &M,
    mut grads: Option<GradientsParams>,
    images: usize,
    device: &B::Device,
) -> Result<Option<GradientsParams>> {
    let mut flat = Flatten::<B> {
        grads: grads.as_mut(),
        scale: images as f32,
        out: Vec::new(),
        _backend: std::marker::PhantomData,
    };
    model.visit(&mut flat);
    let mut buffer = flat.out;
    buffer.push(images as f32);
    let summed = ranks.sum(&buffer);
    let (&total, summed) = summed.split_last().expect("the image count");
    if total == 0.0 {
        return Ok(None);
    }
    let mut mean = Unflatten::<B> { values: summed, divisor: total, grads: GradientsParams::new(), device };
    model.visit(&mut mean);
    Ok(Some(mean.grads))
}

/// Gradients summed through MPI, each rank's weighted by its images.
impl<B: AutodiffBackend> Averaging<B> for Ranks {
    fn average(
        &self,
        model: &AlexNet<B>,
        grads: Option<GradientsParams>,
        images: usize,
    ) -> Result<Option<GradientsParams>> {
        let device = model.devices().into_iter().next().context("a model on no device")?;
        average_gradients::<B, _>(self, model, grads, images, &device)
    }
}

/// This rank's share of an epoch's `order`: of each batch of `batch_size` samples, its
/// [`share`]. Read in batches of `batch_size / size`, the shares line up with the whole batches.
pub fn share_of_order(order: &[usize], batch_size: usize, rank: usize, size: usize) -> Vec<usize> {
    order.chunks(batch_size).flat_map(|batch| batch[share(batch.len(), rank, size)].iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::share_of_order;

    #[test]
    fn shares_line_up_with_whole_batches() {
        let order: Vec<usize> = (0..11).collect();
        // Batches of 4: [0..4) [4..8) [8..11); two ranks take 2, 2 and 1 of each.
        assert_eq!(share_of_order(&order, 4, 0, 2), vec![0, 1, 4, 5, 8]);
        assert_eq!(share_of_order(&order, 4, 1, 2), vec![2, 3, 6, 7, 9]);
        // A last batch smaller than the ranks gives nobody anything.
        assert_eq!(share_of_order(&order[..9], 4, 1, 2), vec![2, 3, 6, 7]);
    }
}
