//! Data parallelism in one process (`trainer train --devices N`): a model replica per peer, each
//! on a thread of its own and its own device (several peers may share one device: the CPU, or one
//! GPU for testing), stepping on an equal shard of every batch. burn-collective's all-reduce
//! averages the gradients, so every replica takes the same SGD step and stays equal to the others;
//! AlexNet has no batch norm, so this is one device's SGD on the whole batch, in another order of
//! float sums.
//!
//! The calling thread coordinates: it cuts each batch into shards, hands them out and waits for
//! every peer with a deadline, so a peer that fails or stalls ends the run with an error that names
//! it instead of a hang (burn-collective's own waits have no deadline: the peers still blocked in
//! the all-reduce end with the process).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use alexnet::train::{draw_weights, Compute, Meter, Stepper};
use alexnet::AlexNet;
use anyhow::{anyhow, bail, Context, Result};
use burn::collective::{self, CollectiveConfig, PeerId, ReduceOperation};
use burn::module::Module;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend, Device, DeviceId};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::data::Batch;
use crate::panics::panic_message;
use crate::parallel::{replica_step, share, Averaging};

/// The devices of `--devices`: a count (`4`: the first four devices) or device indices (`0,2`).
/// On the CPU every peer shares the one device; on a GPU an index may repeat (`0,0`: two peers
/// on the first GPU).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Devices {
    Count(usize),
    Indices(Vec<usize>),
}

impl Default for Devices {
    fn default() -> Self {
        Devices::Count(1)
    }
}

impl FromStr for Devices {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let number = |part: &str| {
            part.trim().parse::<usize>().map_err(|_| format!("`{s}` is neither a count nor indices like 0,1"))
        };
        let devices = if s.contains(',') {
            Devices::Indices(s.split(',').map(number).collect::<Result<_, _>>()?)
        } else {
            Devices::Count(number(s)?)
        };
        if devices.peers() == 0 {
            return Err("at least one device".into());
        }
        Ok(devices)
    }
}

impl std::fmt::Display for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Devices::Count(n) => write!(f, "{n}"),
            Devices::Indices(indices) => {
                f.write_str(&indices.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(","))
            }
        }
    }
}

impl Devices {
    /// How many peers train.
    pub fn peers(&self) -> usize {
        match self {
            Devices::Count(n) => *n,
            Devices::Indices(indices) => indices.len(),
        }
    }

    /// The peers' devices, of the same kind as `first` (the device the backend started). `shared`:
    /// the backend has one device that every peer uses (the CPU).
    pub fn resolve<B: Backend>(&self, first: &B::Device, shared: bool) -> Result<Vec<B::Device>> {
        if *self == Devices::Count(1) {
            return Ok(vec![first.clone()]);
        }
        if shared {
            return Ok(vec![first.clone(); self.peers()]);
        }
        let indices = match self {
            Devices::Count(n) => (0..*n).collect(),
            Devices::Indices(indices) => indices.clone(),
        };
        let kind = first.to_id().type_id;
        let available = B::device_count(kind);
        if let Some(&missing) = indices.iter().find(|&&i| i >= available) {
            bail!(
                "--devices {self}: there is no device {missing} ({available} found); to run several \
                 peers on one device, repeat its index (--devices 0,0)"
            );
        }
        Ok(indices.into_iter().map(|i| B::Device::from_id(DeviceId::new(kind, i as u16))).collect())
    }
}

/// Cuts a loaded batch into the peers' [`share`]s; none when a share would be empty.
pub fn shards(batch: Batch, peers: usize) -> Vec<Batch> {
    if share(batch.len(), 0, peers).is_empty() {
        return Vec::new();
    }
    let values_per_image = batch.inputs.len() / batch.len();
    (0..peers)
        .map(|peer| {
            let images = share(batch.len(), peer, peers);
            let values = images.start * values_per_image..images.end * values_per_image;
            Batch { inputs: batch.inputs[values].to_vec(), labels: batch.labels[images].to_vec() }
        })
        .collect()
}

/// burn-collective's all-reduce between the peer threads of this process.
struct Collective(PeerId);

impl<B: AutodiffBackend> Averaging<B> for Collective {
    /// Every peer steps on an equal, non-empty share ([`shards`]): the plain mean of the peers'
    /// gradients is the mean over the images.
    fn average(
        &self,
        _: &AlexNet<B>,
        grads: Option<GradientsParams>,
        _: usize,
    ) -> Result<Option<GradientsParams>> {
        let mean = |grads: GradientsParams| {
            grads
                .all_reduce::<B::InnerBackend>(self.0, ReduceOperation::Mean)
                .map_err(|e| anyhow!("averaging the gradients with the other peers: {e:?}"))
        };
        grads.map(mean).transpose()
    }
}

enum Request {
    Step { shard: Batch, lr: f64 },
    Snapshot,
}

enum Reply<B: AutodiffBackend, O> {
    /// A step's sums for the meter (see [`Meter::take_sums`]).
    Stepped(Option<(Tensor<B::InnerBackend, 1>, usize)>),
    Snapshot(Box<(AlexNet<B>, O)>),
    Failed(String),
    /// The peer has left the collective (after the coordinator went).
    Finished,
}

/// How a peer runs: its device and the rayon threads it computes with.
#[derive(Debug, Clone)]
pub struct PeerSettings<D> {
    pub devices: Vec<D>,
    /// Threads of each peer's own pool (Flex's kernels run on it).
    pub threads_per_peer: usize,
    /// The longest wait for a peer's step before the run is given up.
    pub timeout: Duration,
}

/// The replicas and the threads that step them; see the module's description.
pub struct Peers<B: AutodiffBackend, O> {
    requests: Vec<Sender<Request>>,
    replies: Receiver<(usize, Reply<B, O>)>,
    devices: Vec<B::Device>,
    timeout: Duration,
}

impl<B, O> Peers<B, O>
where
    B: AutodiffBackend,
    O: Optimizer<AlexNet<B>, B> + 'static,
{
    /// Starts a peer per device, each with a copy of `model` and `optim` on its device.
    pub fn start(
        model: AlexNet<B>,
        optim: O,
        precision: Compute,
        settings: PeerSettings<B::Device>,
    ) -> Result<Self> {
        let PeerSettings { devices, threads_per_peer, timeout } = settings;
        let peers = devices.len();
        // Drawn once, here (a no-op for `train`'s models, drawn at the start): clones of a model
        // whose weights are still to be drawn would each draw their own.
        draw_weights(&model);

        // A previous run in this process (tests) may have left peers registered.
        collective::reset_collective::<B::InnerBackend>();
        let (reply, replies) = mpsc::channel();
        let mut requests = Vec::with_capacity(peers);
        for (id, device) in devices.iter().enumerate() {
            let (request, inbox) = mpsc::channel();
            requests.push(request);
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads_per_peer.max(1))
                .thread_name(move |i| format!("peer-{id}-{i}"))
                .build()
                .context("starting a peer's threads")?;
            let peer = Peer {
                id,
                peers,
                device: device.clone(),
                model: model.clone().fork(device),
                optim: optim.clone(),
                precision,
            };
            let reply = reply.clone();
            std::thread::Builder::new()
                .name(format!("peer-{id}"))
                .spawn(move || pool.install(move || peer.serve(inbox, reply)))
                .context("starting a peer")?;
        }
        Ok(Self { requests, replies, devices, timeout })
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// One SGD step of every replica, each on its shard of `batch`; the shards' loss and hits go
    /// to `meter`.
    pub fn step(&mut self, batch: Batch, lr: f64, meter: &mut Meter<B::InnerBackend>) -> Result<()> {
        let shards = shards(batch, self.len());
        if shards.is_empty() {
            return Ok(());
        }
        for (id, shard) in shards.into_iter().enumerate() {
            self.send(id, Request::Step { shard, lr })?;
        }
        for _ in 0..self.len() {
            match self.receive()? {
                (_, Reply::Stepped(Some((sums, images)))) => {
                    meter.add_sums(sums.to_device(&self.devices[0]), images)
                }
                (_, Reply::Stepped(None)) => {}
                (id, _) => bail!("peer {id} answered out of turn"),
            }
        }
        Ok(())
    }

    /// Peer `id`'s model and optimizer state as they are now (all replicas are equal).
    pub fn snapshot(&mut self, id: usize) -> Result<(AlexNet<B>, O)> {
        self.send(id, Request::Snapshot)?;
        match self.receive()? {
            (_, Reply::Snapshot(snapshot)) => {
                let (model, optim) = *snapshot;
                Ok((model.fork(&self.devices[0]), optim))
            }
            (other, _) => bail!("peer {other} answered out of turn"),
        }
    }

    fn send(&self, id: usize, request: Request) -> Result<()> {
        self.requests[id].send(request).map_err(|_| anyhow!("peer {id} ({:?}) has stopped", self.devices[id]))
    }

    /// The next reply, within the deadline; a failed peer's reply becomes the error.
    fn receive(&self) -> Result<(usize, Reply<B, O>)> {
        match self.replies.recv_timeout(self.timeout) {
            Ok((id, Reply::Failed(reason))) => {
                Err(anyhow!("peer {id} ({:?}) failed: {reason}", self.devices[id]))
            }
            Ok(reply) => Ok(reply),
            Err(RecvTimeoutError::Timeout) => Err(anyhow!(
                "a peer did not answer within {} s (--peer-timeout): stopped",
                self.timeout.as_secs()
            )),
            Err(RecvTimeoutError::Disconnected) => Err(anyhow!("every peer has stopped")),
        }
    }
}

impl<B: AutodiffBackend, O> Drop for Peers<B, O> {
    /// Lets the peers leave the collective before it can be used again (a later run in this
    /// process would otherwise see them unregister its own peers of the same ids). A peer that
    /// failed never answers: the wait for it is bounded.
    fn drop(&mut self) {
        self.requests.clear();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut finished = 0;
        while finished < self.devices.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.replies.recv_timeout(left) {
                Ok((_, Reply::Finished)) => finished += 1,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
}

/// One peer's replica and optimizer, served on its thread.
struct Peer<B: AutodiffBackend, O> {
    id: usize,
    peers: usize,
    device: B::Device,
    model: AlexNet<B>,
    optim: O,
    precision: Compute,
}

impl<B: AutodiffBackend, O: Optimizer<AlexNet<B>, B>> Peer<B, O> {
    /// Answers requests until the coordinator goes or this peer fails; a panic is a failure too.
    fn serve(self, inbox: Receiver<Request>, reply: Sender<(usize, Reply<B, O>)>) {
        let id = self.id;
        let peer = PeerId::from(id);
        let served = catch_unwind(AssertUnwindSafe(|| self.answer(peer, &inbox, &reply)));
        let failure = match served {
            Ok(Ok(())) => {
                let _ = collective::finish_collective::<B::InnerBackend>(peer);
                let _ = reply.send((id, Reply::Finished));
                return;
            }
            Ok(Err(e)) => format!("{e:#}"),
            Err(payload) => panic_message(payload.as_ref()),
        };
        // Not `finish_collective`: the collective is broken, and the next run's reset clears it
        // (a late finish would unregister that run's peer of the same id).
        let _ = reply.send((id, Reply::Failed(failure)));
    }

    fn answer(
        self,
        peer: PeerId,
        inbox: &Receiver<Request>,
        reply: &Sender<(usize, Reply<B, O>)>,
    ) -> Result<()> {
        let config = CollectiveConfig::default().with_num_devices(self.peers);
        collective::register::<B::InnerBackend>(peer, self.device.clone(), config)
            .map_err(|e| anyhow!("joining the other peers: {e:?}"))?;
        let mut stepper = Stepper::new(self.optim, self.precision, &self.device);
        let mut model = self.model;
        while let Ok(request) = inbox.recv() {
            let answer = match request {
                Request::Step { shard, lr } => {
                    let mut meter = Meter::default();
                    model = replica_step(&mut stepper, model, shard, lr, &mut meter, &Collective(peer))?;
                    Reply::Stepped(meter.take_sums())
                }
                Request::Snapshot => Reply::Snapshot(Box::new((model.clone(), stepper.optim.clone()))),
            };
            if reply.send((self.id, answer)).is_err() {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_as_a_count_or_indices() {
        assert_eq!("4".parse::<Devices>(), Ok(Devices::Count(4)));
        assert_eq!("0,2".parse::<Devices>(), Ok(Devices::Indices(vec![0, 2])));
        assert_eq!("0, 0".parse::<Devices>(), Ok(Devices::Indices(vec![0, 0])));
        assert!("0".parse::<Devices>().is_err());
        assert!("cuda".parse::<Devices>().unwrap_err().contains("neither a count nor indices"));
        assert_eq!(Devices::Indices(vec![1, 3]).to_string(), "1,3");
    }

    #[test]
    fn the_cpu_is_shared_and_one_device_is_the_started_one() {
        let cpu = Default::default();
        assert_eq!(Devices::Count(3).resolve::<burn::backend::Flex>(&cpu, true).unwrap().len(), 3);
        assert_eq!(Devices::Count(1).resolve::<burn::backend::Flex>(&cpu, false).unwrap(), vec![cpu]);
        let missing = Devices::Count(2).resolve::<burn::backend::Flex>(&cpu, false).unwrap_err();
        assert!(missing.to_string().contains("there is no device 1 (1 found)"), "{missing}");
    }

    #[test]
    fn shards_are_equal_and_in_order_and_the_remainder_is_dropped() {
        // Three values per image; image i holds i, i, i.
        let batch = |n: usize| Batch {
            inputs: (0..n).flat_map(|i| [i as f32; 3]).collect(),
            labels: (0..n).collect(),
        };
        let cut = shards(batch(7), 2);
        assert_eq!(cut.len(), 2);
        assert_eq!(cut[0].labels, vec![0, 1, 2]);
        assert_eq!(cut[1].labels, vec![3, 4, 5]);
        assert_eq!(cut[1].inputs, vec![3.0, 3.0, 3.0, 4.0, 4.0, 4.0, 5.0, 5.0, 5.0]);
        assert!(shards(batch(1), 2).is_empty(), "one image cannot feed two peers");
    }
}
