//! Data-parallel peers on the CPU (`train --devices N`): burn-collective's all-reduce is exact,
//! two peers stepping on 4 + 4 photos equal one stepping on the 8, and a failing peer ends the
//! run with an error instead of a hang.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{imagenette, max_relative_difference, parameters};
use alexnet::preprocess;
use alexnet::train::{draw_weights, sgd, Compute, Meter, Stepper};
use alexnet::{AlexNet, AlexNetConfig, Initialization};
use burn::backend::{Autodiff, Flex};
use burn::collective::{self, CollectiveConfig, PeerId, ReduceOperation};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use trainer::data::Batch;
use trainer::peers::{PeerSettings, Peers};

type B = Autodiff<Flex>;

/// burn-collective keeps one set of registered peers per backend and process: tests take turns.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Two peers (threads) all-reduce known vectors: the sum and the mean, exactly.
#[test]
fn all_reduce_sums_and_averages_exactly() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for (op, expected) in
        [(ReduceOperation::Sum, [4.0, 6.0, -2.0]), (ReduceOperation::Mean, [2.0, 3.0, -1.0])]
    {
        collective::reset_collective::<Flex>();
        let (send, results) = mpsc::channel();
        let mut peers = Vec::new();
        for (id, values) in [[1.0f32, 2.0, -3.0], [3.0, 4.0, 1.0]].into_iter().enumerate() {
            let send = send.clone();
            peers.push(std::thread::spawn(move || {
                let device = Default::default();
                let peer = PeerId::from(id);
                collective::register::<Flex>(peer, device, CollectiveConfig::default().with_num_devices(2))
                    .unwrap();
                let tensor = Tensor::<Flex, 1>::from_data(TensorData::from(values), &device);
                let reduced =
                    collective::all_reduce::<Flex>(peer, tensor.into_primitive().tensor(), op).unwrap();
                let reduced = Tensor::<Flex, 1>::from_primitive(TensorPrimitive::Float(reduced));
                send.send(reduced.into_data().to_vec::<f32>().unwrap()).unwrap();
                collective::finish_collective::<Flex>(peer).unwrap();
            }));
        }
        for _ in 0..2 {
            let got = results.recv_timeout(Duration::from_secs(60)).expect("a peer's result");
            assert_eq!(got, expected, "{op:?}");
        }
        // Both unregistered before the next round registers again.
        peers.into_iter().for_each(|p| p.join().unwrap());
    }
}

/// Eight validation photos of Imagenette, one per class, as one batch.
fn eight_photos() -> Batch {
    let val = imagenette().join("val");
    let mut classes: Vec<_> = std::fs::read_dir(&val).unwrap().map(|e| e.unwrap().path()).collect();
    classes.sort();
    let mut batch = Batch { inputs: Vec::new(), labels: Vec::new() };
    for (label, class) in classes.iter().take(8).enumerate() {
        let mut files: Vec<_> = std::fs::read_dir(class).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let bytes = std::fs::read(&files[0]).unwrap();
        batch.inputs.extend(preprocess::preprocess_bytes(&bytes, &Default::default()).unwrap());
        batch.labels.push(label);
    }
    batch
}

/// The paper's network at quarter width without dropout (dropout would draw different masks),
/// its weights drawn.
fn model() -> AlexNet<B> {
    let device = Default::default();
    B::seed(&device, 5);
    let config = AlexNetConfig::paper(10).with_width(0.25).with_dropout(0.0);
    let model = config.with_initialization(Initialization::He).init(&device);
    draw_weights(&model);
    model
}

fn settings(peers: usize) -> PeerSettings<burn::backend::flex::FlexDevice> {
    PeerSettings {
        devices: vec![Default::default(); peers],
        threads_per_peer: 1,
        timeout: Duration::from_secs(120),
    }
}

/// Tolerance of two peers against one, after 3 steps: max |difference| of each parameter over its
/// largest |value|, and of the losses. Only the order of float sums differs (two means of 4
/// losses averaged, against one mean of 8).
const TOLERANCE: f32 = 1e-4;

#[test]
fn two_peers_on_four_photos_each_equal_one_on_eight() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let batch = eight_photos();
    let device = Default::default();
    // Momentum and weight decay on: the optimizer state must stay in step too.
    let (momentum, weight_decay, lr) = (0.9, 5e-4, 0.01);

    let mut one = Stepper::new(sgd::<B>(momentum, weight_decay), Compute::F32, &device);
    let mut single = model();
    let mut single_losses = Vec::new();
    for _ in 0..3 {
        let mut meter = Meter::default();
        let (images, targets) = one.batch(batch.inputs.clone(), &batch.labels);
        single = one.step(single, images, targets, lr, &mut meter);
        single_losses.push(meter.read().loss as f32);
    }

    let mut peers =
        Peers::start(model(), sgd::<B>(momentum, weight_decay), Compute::F32, settings(2)).unwrap();
    let mut peer_losses = Vec::new();
    for _ in 0..3 {
        let mut meter = Meter::default();
        peers.step(batch.clone(), lr, &mut meter).unwrap();
        let means = meter.read();
        assert_eq!(means.images, 8, "both shards are counted");
        peer_losses.push(means.loss as f32);
    }
    let (first, _) = peers.snapshot(0).unwrap();
    let (second, _) = peers.snapshot(1).unwrap();
    println!("losses: one peer {single_losses:?}, two peers {peer_losses:?}");
    assert!(single_losses[2] < single_losses[0], "the steps do not learn: {single_losses:?}");
    assert!(max_relative_difference(&single_losses, &peer_losses) <= TOLERANCE);

    let (first, second, single) = (parameters(&first), parameters(&second), parameters(&single));
    assert_eq!(first.len(), 16, "conv1-5 and fc6-8, weights and biases");
    for ((a, b), c) in first.iter().zip(&second).zip(&single) {
        assert_eq!(a, b, "the replicas differ in {}", a.0);
        let difference = max_relative_difference(&c.1, &a.1);
        assert!(difference <= TOLERANCE, "{}: {difference:.2e} from one peer's", a.0);
    }
}

/// A peer that fails (here: a label the network has no output for, in the second shard only) ends
/// the step with an error naming it, while the other peer waits in the all-reduce.
#[test]
fn a_failing_peer_is_an_error_not_a_hang() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut batch = eight_photos();
    batch.labels[7] = 99;
    let mut peers = Peers::start(model(), sgd::<B>(0.9, 5e-4), Compute::F32, settings(2)).unwrap();
    let started = Instant::now();
    let error = peers.step(batch, 0.01, &mut Meter::default()).unwrap_err().to_string();
    assert!(error.starts_with("peer 1 "), "{error}");
    assert!(error.contains("failed"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(60));
}
