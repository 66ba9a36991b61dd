//! `mpirun -np 2 trainer train` (feature `mpi`, OpenMPI): two processes train one model as one
//! process does, resume exactly, and a rank that fails or dies ends the whole job with an error
//! that names it, within seconds, instead of leaving the other waiting.
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{imagenette, largest_magnitude, max_difference, parameters};
use alexnet::weights::SavedModel;
use burn::backend::Flex;

const TRAINER: &str = env!("CARGO_BIN_EXE_trainer");

/// The jobs take turns: each would otherwise slow the others' bounded waits down.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A narrow model on 32 photos, 2 epochs, batches of 8 (4 per rank); no dropout, since each rank
/// draws its own masks.
fn train_args(out: &Path, extra: &[&str]) -> Vec<String> {
    let data = imagenette();
    let mut args: Vec<String> = ["train", "--data", data.to_str().unwrap(), "--out", out.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(
        "--backend cpu --preset torchvision --width 0.125 --init he --max-classes 2 --train-per-class 16 \
         --val-per-class 8 --dropout 0 --lr 0.001 --seed 3 --workers 1 --no-tui"
            .split_whitespace()
            .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    for (option, default) in [("--epochs", "2"), ("--batch-size", "8")] {
        if !extra.contains(&option) {
            args.extend([option.to_string(), default.to_string()]);
        }
    }
    args
}

/// Runs `command`, failing the test if it takes longer than `limit` (it is then killed).
fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("mpirun starts");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {}", String::from_utf8_lossy(&output.stderr));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// `mpirun -np 2` running `program args` (root allowed: CI runs as root; one kernel thread per
/// rank on the 2 cores).
fn mpirun(program: &str, args: &[String]) -> Command {
    let mut command = Command::new("mpirun");
    command
        .args(["-np", "2", "--oversubscribe", program])
        .args(args)
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("RAYON_NUM_THREADS", "1");
    command
}

fn succeeded(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "failed: {stderr}");
    stderr
}

fn history(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("metrics.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn weights(out: &Path) -> Vec<(String, Vec<f32>)> {
    let saved = SavedModel::<Flex>::load(&out.join("model.safetensors"), &Default::default()).unwrap();
    parameters(&saved.model)
}

/// Metrics within `tolerance` (relative), and every weight within `tolerance` of the network's
/// largest weight. (Not of each tensor's own largest: float sums in another order can flip one
/// ReLU that sits at zero, which moves a tensor of tiny biases by a percent of its own scale.)
fn assert_same_run(a: &Path, b: &Path, tolerance: f64) {
    let (x, y) = (history(a), history(b));
    assert_eq!(x.len(), y.len());
    for (p, q) in x.iter().zip(&y) {
        for key in ["train_loss", "train_top1", "val_loss", "val_top1", "val_top5"] {
            let (p, q) = (p[key].as_f64().unwrap(), q[key].as_f64().unwrap());
            assert!((p - q).abs() <= tolerance * p.abs().max(1.0), "{key}: {p} vs {q}");
        }
    }
    let (a, b) = (weights(a), weights(b));
    let scale = largest_magnitude(a.iter().flat_map(|(_, values)| values));
    for ((name, p), (_, q)) in a.iter().zip(&b) {
        let difference = max_difference(p, q) / scale;
        assert!(difference as f64 <= tolerance, "{name}: {difference}");
    }
}

#[test]
fn two_processes_train_like_one_and_resume() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let limit = Duration::from_secs(600);
    let one = tempfile::tempdir().unwrap();
    let mut alone = Command::new(TRAINER);
    alone.args(train_args(one.path(), &[])).env("RAYON_NUM_THREADS", "1");
    succeeded(&run_bounded(alone, limit));

    let two = tempfile::tempdir().unwrap();
    let stderr = succeeded(&run_bounded(mpirun(TRAINER, &train_args(two.path(), &[])), limit));
    // Rank 0 alone reports and writes.
    assert_eq!(stderr.matches("epoch 2/2: train loss").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("saved ").count(), 1, "{stderr}");
    assert!(stderr.contains("2 processes (MPI), 4 images each per step"), "{stderr}");
    // The same SGD on the whole batch, float sums in another order (measured: 4e-6).
    assert_same_run(one.path(), two.path(), 1e-4);

    let resumed = tempfile::tempdir().unwrap();
    succeeded(&run_bounded(mpirun(TRAINER, &train_args(resumed.path(), &["--epochs", "1"])), limit));
    succeeded(&run_bounded(mpirun(TRAINER, &train_args(resumed.path(), &["--resume"])), limit));
    assert_same_run(two.path(), resumed.path(), 1e-6);

    let uneven = tempfile::tempdir().unwrap();
    let output = run_bounded(mpirun(TRAINER, &train_args(uneven.path(), &["--batch-size", "7"])), limit);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--batch-size 7 does not split into 2 equal shares (mpirun -np 2)"), "{stderr}");
}

/// Rank 1 alone is given a dataset that does not exist: it reports and aborts the job, and
/// rank 0, already waiting for it, does not hang.
#[test]
fn a_failing_rank_ends_the_job_with_its_error() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let args = train_args(out.path(), &[]);
    let mut bad = args.clone();
    let data = bad.iter().position(|a| a == "--data").unwrap() + 1;
    bad[data] = "/nonexistent".into();
    let quoted = |args: &[String]| args.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ");
    let script = format!(
        "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then exec {TRAINER} {}; else exec {TRAINER} {}; fi",
        quoted(&bad),
        quoted(&args)
    );
    let started = Instant::now();
    let output = run_bounded(mpirun("sh", &["-c".into(), script]), Duration::from_secs(120));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("error on rank 1 of 2: dataset folder /nonexistent/train does not exist"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}

/// Rank 1 is killed in the middle of training: mpirun stops rank 0 and names the dead rank.
#[test]
fn a_dying_rank_ends_the_job() {
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let script = format!(
        "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then exec timeout -s KILL 5 {TRAINER} \"$@\"; else exec {TRAINER} \"$@\"; fi"
    );
    let mut args = vec!["-c".to_string(), script, "sh".to_string()];
    args.extend(train_args(out.path(), &["--epochs", "100"]));
    let started = Instant::now();
    let output = run_bounded(mpirun("sh", &args), Duration::from_secs(120));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rank 1") && stderr.contains("signal 9"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
}
